"""Search spaces, grid / random / log-then-fine search and k-fold cross-validation on batched runs.

The course's protocol: try learning rates on a log grid (1e-4 … 1) for a few
epochs, then search finer around the best; grid or random search over a
declared space; k-fold cross-validation when data are few; never touch the
test split while tuning; rerun the chosen configuration over several seeds.

Every stage evaluates its configurations with
:func:`ravine.train.batched.fit_batched`: the configurations of one batch size
train as one batched computation per fold. Candidates are compared on the
final validation metric (mean over folds); a diverged run ranks last.

The test split is never read by a search: each fold's data are built from the
training and validation splits only (k-fold CV pools them and splits the pool
with scikit-learn's ``KFold`` / ``StratifiedKFold``), and the batched runs are
told not to evaluate a test split. Only :func:`rerun` — after the search, on
the chosen configuration — reports test metrics.

Note on preprocessing: the problem's standardization was fitted on its training
split, which k-fold CV pools with the validation split; the folds' validation
rows therefore saw the scaler's fit (a mild optimism shared by every candidate).

Example:
    >>> space = parse_space(["lr=1e-3:1:log:5", "momentum=0.5,0.9"])
    >>> len(grid(space))
    10
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ravine.data import Splits
from ravine.errors import ConfigError, check_int, check_range
from ravine.problems import ProblemInstance

#: parameters a space may declare (``schedule.<arg>`` declares a schedule argument)
PARAMS = ("lr", "momentum", "beta1", "beta2", "weight_decay", "batch_size", "epochs", "schedule")
_INT_PARAMS = ("batch_size", "epochs")

ProgressFn = Callable[[int, int, str], None]


@dataclass
class Dimension:
    """One searched parameter: explicit ``choices``, or a range ``low … high`` (log-spaced when ``log``).

    ``num`` is the number of grid points of a range.
    """

    name: str
    choices: list[Any] | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    num: int = 5

    def grid_values(self) -> list[Any]:
        """The values a grid search tries (the choices, or ``num`` points of the range)."""
        if self.choices is not None:
            return list(self.choices)
        assert self.low is not None and self.high is not None
        if self.num == 1:
            return [self.low]
        if self.log:
            values = np.geomspace(self.low, self.high, self.num)
        else:
            values = np.linspace(self.low, self.high, self.num)
        return [_cast(self.name, float(v)) for v in values]

    def sample(self, rng: np.random.Generator) -> Any:
        """One random value: uniform over choices, uniform (or log-uniform) over a range."""
        if self.choices is not None:
            return self.choices[int(rng.integers(len(self.choices)))]
        assert self.low is not None and self.high is not None
        if self.log:
            return _cast(self.name, float(math.exp(rng.uniform(math.log(self.low), math.log(self.high)))))
        return _cast(self.name, float(rng.uniform(self.low, self.high)))

    def to_json(self) -> dict[str, Any]:
        """Plain dict."""
        return {"name": self.name, "choices": self.choices, "low": self.low, "high": self.high, "log": self.log,
                "num": self.num}


def _cast(name: str, value: float) -> Any:
    return int(round(value)) if name in _INT_PARAMS or name.endswith((".every", ".period")) else value


def _number(text: str, field_name: str) -> Any:
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text
    if not math.isfinite(value):
        raise ConfigError(f"Invalid {field_name}: {text} (allowed: finite numbers)")
    return value


def _check_name(name: str) -> str:
    if name in PARAMS or (name.startswith("schedule.") and len(name) > len("schedule.")):
        return name
    raise ConfigError(f"Invalid space parameter: {name!r} (allowed: {', '.join(PARAMS)}, schedule.<arg>)")


def parse_space(items: Sequence[str] | Mapping[str, Any]) -> list[Dimension]:
    """Parse a search space.

    Text form (the command line's ``--space``): ``name=a,b,c`` (choices) or
    ``name=low:high[:log][:num]`` (a range; ``num`` grid points, default 5).
    Mapping form: ``{"lr": {"low": 1e-4, "high": 1, "log": True}, "momentum": [0.5, 0.9]}``.

    Example:
        >>> [d.to_json()["choices"] for d in parse_space(["momentum=0.5,0.9"])]
        [[0.5, 0.9]]
        >>> d = parse_space(["lr=1e-4:1:log:5"])[0]
        >>> [round(v, 6) for v in d.grid_values()]
        [0.0001, 0.001, 0.01, 0.1, 1.0]

    Raises:
        ConfigError: unknown parameter, empty choices, low ≥ high, log of a non-positive bound.
    """
    dims: list[Dimension] = []
    if isinstance(items, Mapping):
        for name, spec in items.items():
            if isinstance(spec, Mapping):
                dims.append(_range_dim(_check_name(name), spec.get("low"), spec.get("high"),
                                       bool(spec.get("log", False)), spec.get("num", 5)))
            elif isinstance(spec, Sequence) and not isinstance(spec, str):
                dims.append(_choice_dim(_check_name(name), list(spec)))
            else:
                dims.append(_choice_dim(_check_name(name), [spec]))
    else:
        for item in items:
            name, sep, text = str(item).partition("=")
            name = name.strip()
            if not sep or not name or not text.strip():
                raise ConfigError(f"Invalid --space: {item!r} (allowed: name=a,b,c or name=low:high[:log][:num])")
            _check_name(name)
            if ":" in text:
                parts = [p.strip() for p in text.split(":")]
                log = "log" in parts[2:]
                rest = [p for p in parts[2:] if p != "log"]
                if len(rest) > 1 or len(parts) < 2:
                    raise ConfigError(f"Invalid --space: {item!r} (allowed: name=low:high[:log][:num])")
                num = _number(rest[0], "space num") if rest else 5
                dims.append(_range_dim(name, _number(parts[0], name), _number(parts[1], name), log, num))
            else:
                dims.append(_choice_dim(name, [_number(v, name) for v in text.split(",") if v.strip()]))
    names = [d.name for d in dims]
    if len(set(names)) != len(names):
        raise ConfigError(f"Invalid space: {', '.join(names)} (allowed: each parameter once)")
    return dims


def _choice_dim(name: str, choices: list[Any]) -> Dimension:
    if not choices:
        raise ConfigError(f"Invalid space {name}: no values (allowed: one or more values)")
    for v in choices:
        _check_value(name, v)
    return Dimension(name, choices=choices)


def _range_dim(name: str, low: Any, high: Any, log: bool, num: Any) -> Dimension:
    if not isinstance(low, int | float) or not isinstance(high, int | float) or isinstance(low, bool):
        raise ConfigError(f"Invalid space {name}: {low!r}:{high!r} (allowed: numbers low:high)")
    if not low < high:
        raise ConfigError(f"Invalid space {name}: {low}:{high} (allowed: low < high)")
    if log and low <= 0:
        raise ConfigError(f"Invalid space {name}: log range from {low} (allowed: low > 0 on a log scale)")
    num = check_int("space num", num, 1, 1000, error=ConfigError)
    _check_value(name, low)
    _check_value(name, high)
    return Dimension(name, low=float(low), high=float(high), log=log, num=num)


def _check_value(name: str, value: Any) -> None:
    if name == "schedule":
        from ravine import schedules

        schedules.info(str(value))
        return
    if name.startswith("schedule."):
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"Invalid space {name}: {value!r} (allowed: numbers)")
    if name == "lr":
        check_range("lr", value, 0.0, low_inclusive=False, error=ConfigError)
    elif name in ("momentum", "beta1", "beta2"):
        check_range(name, value, 0.0, 1.0, high_inclusive=False, error=ConfigError)
    elif name == "weight_decay":
        check_range(name, value, 0.0, error=ConfigError)
    else:
        check_int(name, int(value) if float(value).is_integer() else value, 1, 100_000, error=ConfigError)


def grid(space: Sequence[Dimension]) -> list[dict[str, Any]]:
    """Every combination of the dimensions' grid values (``sklearn.model_selection.ParameterGrid``)."""
    from sklearn.model_selection import ParameterGrid

    if not space:
        return [{}]
    order = [d.name for d in space]
    configs = list(ParameterGrid({d.name: d.grid_values() for d in space}))
    return [{k: c[k] for k in order} for c in configs]


def random_configs(space: Sequence[Dimension], n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` configurations drawn independently (choices uniformly, ranges uniformly or log-uniformly).

    scikit-learn's ``ParameterSampler`` was considered; it needs scipy
    distributions for log ranges and samples without replacement from pure
    grids, which changes the count; this draws with a seeded NumPy generator.
    """
    n = check_int("trials", n, 1, 100_000, error=ConfigError)
    rng = np.random.default_rng(seed)
    return [{d.name: d.sample(rng) for d in space} for _ in range(n)]


def run_config(optimizer: str, config: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> Any:
    """A :class:`ravine.train.batched.RunConfig` from a configuration dict (lr, momentum, beta1, ...).

    Example:
        >>> rc = run_config("adam", {"lr": 0.01, "beta1": 0.8, "schedule": "step", "schedule.every": 2})
        >>> rc.hyper["betas"], rc.schedule
        ((0.8, 0.999), {'name': 'step', 'every': 2})
    """
    from ravine import optim
    from ravine.train.batched import RunConfig

    entry = optim.info(optimizer)
    cfg = {**(defaults or {}), **config}
    hyper: dict[str, Any] = {}
    if "momentum" in cfg:
        hyper["momentum"] = cfg["momentum"]
    if "beta1" in cfg or "beta2" in cfg:
        b1, b2 = entry.defaults.get("betas", (0.9, 0.999))
        hyper["betas"] = (cfg.get("beta1", b1), cfg.get("beta2", b2))
    if "weight_decay" in cfg:
        hyper["weight_decay"] = cfg["weight_decay"]
    schedule = None
    if "schedule" in cfg and cfg["schedule"] not in (None, "none", "constant"):
        schedule = {"name": cfg["schedule"], **{k.split(".", 1)[1]: v for k, v in cfg.items()
                                                 if k.startswith("schedule.")}}
    return RunConfig(entry.name, lr=cfg.get("lr"), hyper=hyper, schedule=schedule, epochs=cfg.get("epochs"))


# --- data for a search: folds of train ∪ val, never the test split --------------------------------


def kfold_indices(y: torch.Tensor | np.ndarray, k: int, *, stratified: bool, seed: int = 0
                  ) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` (train, validation) index pairs (scikit-learn's ``StratifiedKFold`` / ``KFold``, shuffled, seeded).

    Every row is in exactly one validation fold; stratified folds keep each
    class's share within one row of its share in ``y``.

    Example:
        >>> folds = kfold_indices(np.array([0, 1] * 10), 5, stratified=True)
        >>> sorted(np.concatenate([va for _, va in folds]).tolist()) == list(range(20))
        True
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    y_np = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    k = check_int("folds", k, 2, max(2, len(y_np)), error=ConfigError)
    if stratified:
        counts = np.unique(y_np, return_counts=True)[1]
        if counts.min() < k:
            raise ConfigError(f"Invalid folds: {k} (allowed: at most {int(counts.min())}, the size of the "
                              "smallest class, for stratified folds)")
        splitter: Any = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        return [(tr, va) for tr, va in splitter.split(np.zeros(len(y_np)), y_np)]
    splitter = KFold(n_splits=k, shuffle=True, random_state=seed)
    return [(tr, va) for tr, va in splitter.split(np.zeros(len(y_np)))]


def search_instances(inst: ProblemInstance, folds: int | None = None, seed: int = 0) -> list[ProblemInstance]:
    """The instances a search trains on: the train/val split, or ``folds`` folds of train ∪ val.

    The returned instances hold an *empty* test split: the original one is not read.
    """
    d = inst.data
    X_tr, y_tr, X_va, y_va = d.X_train, d.y_train, d.X_val, d.y_val
    empty_X, empty_y = X_tr[:0], y_tr[:0]

    def make(X_a: torch.Tensor, y_a: torch.Tensor, X_b: torch.Tensor, y_b: torch.Tensor) -> ProblemInstance:
        splits = Splits(X_a, y_a, X_b, y_b, empty_X, empty_y, feature_names=d.feature_names)
        return ProblemInstance(splits, inst.model, inst.loss_fn, inst.residual_fn, inst.metric_fn, inst.metric_name,
                               inst.higher_is_better, inst.error_fn, inst.reference_error, inst.target)

    if not folds or folds == 1:
        return [make(X_tr, y_tr, X_va, y_va)]
    X = torch.cat([X_tr, X_va])
    y = torch.cat([y_tr, y_va])
    stratified = not torch.is_floating_point(y)  # class labels
    out = []
    for tr, va in kfold_indices(y, folds, stratified=stratified, seed=seed):
        tr_t, va_t = torch.as_tensor(tr, device=X.device), torch.as_tensor(va, device=X.device)
        out.append(make(X[tr_t], y[tr_t], X[va_t], y[va_t]))
    return out


# --- evaluation --------------------------------------------------------------------------------------


@dataclass
class Trial:
    """One evaluated configuration (``to_json()``: config, per-fold metrics, score, time)."""

    number: int
    config: dict[str, Any]
    folds: list[dict[str, Any]] = field(default_factory=list)
    score: float = math.nan
    status: str = "ok"
    time: float = 0.0
    stage: str = ""

    def to_json(self) -> dict[str, Any]:
        """Plain dict."""
        return {"number": self.number, "config": self.config, "folds": self.folds, "score": self.score,
                "status": self.status, "time": self.time, "stage": self.stage}


def _fold_record(fold: int, history: Mapping[str, Any]) -> dict[str, Any]:
    ep = history["epoch"]
    return {"fold": fold, "status": history["status"], "message": history.get("message", ""),
            "val_metric": ep["val_metric"][-1] if ep["val_metric"] else math.nan,
            "val_loss": ep["val_loss"][-1] if ep["val_loss"] else math.nan,
            "train_loss": ep["train_loss"][-1] if ep["train_loss"] else math.nan,
            "curve": list(ep["val_metric"]), "epochs": ep["epoch"][-1] if ep["epoch"] else 0,
            "loss_curve": {"lr": list(history["iteration"]["lr"])[::10],
                           "loss_ema": list(history["iteration"]["loss_ema"])[::10]}}


@dataclass
class Context:
    """A problem prepared for searching: instances per fold and the defaults of its runs."""

    inst: ProblemInstance
    recipe: Any
    folds: list[ProblemInstance]
    optimizer: str
    defaults: dict[str, Any]
    seed: int
    higher_is_better: bool
    metric_name: str
    mode: str = "auto"
    options: dict[str, Any] = field(default_factory=dict)

    def key(self, score: float) -> float:
        """Sort key, smaller is better; NaN (diverged) last."""
        if not math.isfinite(score):
            return math.inf
        return -score if self.higher_is_better else score


def prepare(problem: ProblemInstance | str, optimizer: str, *, folds: int | None = None, seed: int = 0,
            epochs: int | None = None, batch_size: int | str | None = "auto",
            problem_options: Mapping[str, Any] | None = None, device: str | None = None,
            mode: str = "auto") -> Context:
    """Build the problem once and its search folds; resolve the defaults (lr, batch size, epochs)."""
    from ravine import optim
    from ravine.train.batched import _resolve_problem, batchable
    from ravine.train.spec import default_lr

    options = dict(problem_options or {})
    name = optim.info(optimizer).name
    if not batchable(name):
        raise ConfigError(f"Invalid optimizer: {name!r} for tuning (allowed: first-order optimizers; "
                          "full-batch and closure methods have no learning-rate search here)")
    inst, recipe = _resolve_problem(problem, seed, device, None, options)
    n = len(inst.data.X_train)
    if batch_size == "auto":
        batch_size = recipe.batch_size if recipe is not None else min(64, n)
    if batch_size not in (None, "full"):
        batch_size = check_int("batch_size", batch_size, 1, error=ConfigError)
    else:
        batch_size = None
    epochs = check_int("epochs", epochs if epochs is not None else (recipe.epochs if recipe else 10), 1, 100_000,
                       error=ConfigError)
    defaults = {"lr": default_lr(name, recipe, options)[0], "batch_size": batch_size, "epochs": epochs}
    return Context(inst, recipe, search_instances(inst, folds, seed), name, defaults, seed, inst.higher_is_better,
                   inst.metric_name, mode, options)


def evaluate(ctx: Context, configs: Sequence[Mapping[str, Any]], *, stage: str = "", start_number: int = 0,
             progress: ProgressFn | None = None,
             on_epoch: Callable[[int, int, list[dict[str, Any]]], Sequence[int]] | None = None) -> list[Trial]:
    """Train every configuration on every fold (batched per fold and batch size); one :class:`Trial` each.

    ``on_epoch(fold, epoch, histories) -> indices`` may stop runs early (pruning);
    indices refer to positions in ``configs``.
    """
    from ravine.train.batched import fit_batched

    trials = [Trial(start_number + i, dict(c), stage=stage) for i, c in enumerate(configs)]
    groups: dict[Any, list[int]] = {}
    for i, c in enumerate(configs):
        bs = c.get("batch_size", ctx.defaults["batch_size"])
        groups.setdefault(bs, []).append(i)
    total = len(ctx.folds) * len(groups)
    done = 0
    for f, fold in enumerate(ctx.folds):
        n_train = len(fold.data.X_train)
        for bs, members in groups.items():
            runs = [run_config(ctx.optimizer, configs[i], ctx.defaults) for i in members]
            hook = None
            if on_epoch is not None:
                def hook(epoch: int, hists: list[dict[str, Any]], _m: list[int] = members, _f: int = f
                         ) -> list[int]:
                    stop = on_epoch(_f, epoch, [hists[j] for j in range(len(_m))])
                    return [j for j, i in enumerate(_m) if i in set(stop or ())]
            res = fit_batched(fold, runs, batch_size=None if bs is None else min(int(bs), n_train),
                              epochs=ctx.defaults["epochs"], seed=ctx.seed, evaluate_test=False,
                              mode=ctx.mode, on_epoch=hook)
            per_run = res.wall_time / len(members)
            for j, i in enumerate(members):
                trials[i].folds.append(_fold_record(f, res.runs[j].history))
                trials[i].time += per_run
            done += 1
            if progress is not None:
                progress(done, total, stage)
    for t in trials:
        t.status = "diverged" if any(r["status"] == "diverged" for r in t.folds) else "ok"
        scores = [r["val_metric"] for r in t.folds]
        t.score = float(np.mean(scores)) if t.status == "ok" and all(math.isfinite(s) for s in scores) else math.nan
    return trials


def best_trial(ctx: Context, trials: Sequence[Trial]) -> Trial:
    """The trial with the best score (ties: the earlier)."""
    if not trials:
        raise ConfigError("Invalid search: no trials")
    return min(trials, key=lambda t: (ctx.key(t.score), t.number))


# --- the searches --------------------------------------------------------------------------------------


def log_then_fine(ctx: Context, *, low: float = 1e-4, high: float = 1.0, coarse_points: int = 9,
                  coarse_epochs: int = 3, fine_points: int = 7, fine_epochs: int | None = None,
                  base: Mapping[str, Any] | None = None, progress: ProgressFn | None = None) -> list[Trial]:
    """The course's lr protocol: a log grid ``low … high`` for ``coarse_epochs``, then a finer log grid
    ε_best · 10^{[−½, ½]} (``fine_points`` points, best/√10 … best·√10) for ``fine_epochs``
    (default: the same short budget), each stage one batched computation.

    Returns both stages' trials (``stage`` is ``"coarse"`` or ``"fine"``); the best is
    :func:`best_trial` of the fine stage.
    """
    base = dict(base or {})
    coarse_points = check_int("coarse_points", coarse_points, 2, 1000, error=ConfigError)
    fine_points = check_int("fine_points", fine_points, 1, 1000, error=ConfigError)
    coarse_epochs = check_int("coarse_epochs", coarse_epochs, 1, 100_000, error=ConfigError)
    lrs = [float(v) for v in np.geomspace(low, high, coarse_points)]
    coarse = evaluate(ctx, [{**base, "lr": lr, "epochs": coarse_epochs} for lr in lrs], stage="coarse",
                      progress=progress)
    best = best_trial(ctx, coarse).config["lr"]
    fine_lrs = [float(best * 10 ** e) for e in np.linspace(-0.5, 0.5, fine_points)]
    fine = evaluate(ctx, [{**base, "lr": lr, "epochs": fine_epochs or coarse_epochs} for lr in fine_lrs],
                    stage="fine", start_number=len(coarse), progress=progress)
    return coarse + fine


def rerun(ctx: Context, config: Mapping[str, Any], seeds: int = 5) -> dict[str, Any]:
    """Train ``config`` from ``seeds`` different initial weights (one batch) on the train/val split.

    Returns ``{"seeds", "val_metric", "test_metric", "median": {...}, "spread": {...}, "same_start"}``
    where the spread is the interquartile range (q75 − q25) and also min and max; ``same_start``
    is True when every seed gave the same initial weights (a problem that starts from zeros), so
    the reruns are one run repeated. This is after the search: here, and only here, the test
    split is evaluated.
    """
    from ravine.train.batched import RunConfig, fit_batched

    seeds = check_int("seeds", seeds, 1, 64, error=ConfigError)
    rc = run_config(ctx.optimizer, config, ctx.defaults)
    inits: list[Any] = [None]
    for s in range(1, seeds):  # seed s: the problem's model built with seed + s (its own init rule)
        if ctx.recipe is not None:
            p = next(ctx.inst.model.parameters())
            inits.append(ctx.recipe.build(seed=ctx.seed + s, device=p.device, dtype=p.dtype,
                                          **ctx.options).model)
        else:
            from ravine.models import init_module_
            import copy

            model = copy.deepcopy(ctx.inst.model)
            init_module_(model, "he", torch.Generator().manual_seed(ctx.seed + s))
            inits.append(model)
    runs = [RunConfig(rc.optimizer, rc.lr, rc.hyper, rc.schedule, rc.epochs, init=i) for i in inits]
    bs = config.get("batch_size", ctx.defaults["batch_size"])
    res = fit_batched(ctx.inst, runs, batch_size=bs, epochs=ctx.defaults["epochs"], seed=ctx.seed, mode=ctx.mode)
    val = [r.history["epoch"]["val_metric"][-1] if r.history["status"] == "ok" else math.nan for r in res.runs]
    test = [(r.history["test"] or {}).get("metric", math.nan) if r.history["test"] else math.nan for r in res.runs]

    def stats(xs: list[float]) -> dict[str, float]:
        a = np.array([x for x in xs if math.isfinite(x)])
        if not len(a):
            return {"median": math.nan, "iqr": math.nan, "min": math.nan, "max": math.nan}
        q25, q50, q75 = np.percentile(a, [25, 50, 75])
        return {"median": float(q50), "iqr": float(q75 - q25), "min": float(a.min()), "max": float(a.max())}

    base = [t.detach() for t in ctx.inst.model.parameters()]
    same = all(all(torch.equal(a, b.detach()) for a, b in zip(base, m.parameters(), strict=True))
               for m in inits[1:])
    return {"seeds": len(runs), "val_metric": val, "test_metric": test, "val": stats(val), "test": stats(test),
            "same_start": bool(same and len(inits) > 1)}
