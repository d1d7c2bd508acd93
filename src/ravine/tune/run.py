"""``ravine tune``'s library function: one call per method, one ``tune.json`` and one report.

Example:
    >>> res = tune("digits-mlp", "adam", "log-then-fine", epochs=2, out_dir=None)  # doctest: +SKIP
    >>> res["best"]["config"]["lr"]  # doctest: +SKIP
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ravine.errors import ConfigError, check_int
from ravine.tune import range_test as rt
from ravine.tune import search as srch

METHODS = ("range-test", "grid", "random", "log-then-fine", "optuna")
DEFAULT_SPACE = ("lr=1e-4:1:log:9",)

ProgressFn = Callable[[int, int, str], None]


def tune(problem: str, optimizer: str = "adam", method: str = "log-then-fine", *,
         space: Sequence[str] | Mapping[str, Any] | None = None, folds: int | None = None, trials: int = 20,
         storage: str | None = None, study: str | None = None, epochs: int | None = None,
         batch_size: int | str | None = "auto", seed: int = 0, rerun_seeds: int = 3, batch: int = 8,
         problem_options: Mapping[str, Any] | None = None, device: str | None = "cpu",
         out_dir: str | Path | None = None, progress: ProgressFn | None = None, rerun_best: bool = True,
         range_iterations: int = 300, range_lr: tuple[float, float] = (1e-5, 10.0),
         collect: bool = False) -> dict[str, Any]:
    """Tune ``optimizer`` on ``problem`` with ``method``; return (and write) the ``tune.json`` dict.

    Methods: ``range-test`` (:func:`ravine.tune.lr_range_test`, 3 seeds batched);
    ``grid`` / ``random`` (over ``space``; with ``storage`` the list is enqueued in
    an Optuna study that several workers share); ``log-then-fine`` (the course's
    protocol); ``optuna`` (TPE + median pruning, ``trials`` trials in this worker).
    The best configuration is rerun over ``rerun_seeds`` initial weights (median
    and spread of the validation and test metric): the only place the test split is read.
    ``collect=True`` trains nothing: it reads the study's trials (after other workers finished).
    ``range_lr``: the (lr_min, lr_max) the range test sweeps.

    Returns:
        ``{"problem", "optimizer", "method", "metric_name", "higher_is_better", "folds", "space",
        "defaults", "trials": [{"number", "config", "folds": [{"fold", "val_metric", "val_loss",
        "train_loss", "status", "curve", ...}], "score", "status", "time", "stage"}], "best",
        "range_test", "rerun", "storage", "study", "wall_time"}``.
    """
    start = time.perf_counter()
    if method not in METHODS:
        raise ConfigError(f"Invalid method: {method!r} (allowed: {', '.join(METHODS)})")
    if folds is not None:
        folds = check_int("folds", folds, 1, 100, error=ConfigError)
    dims = srch.parse_space(space if space else DEFAULT_SPACE)
    ctx = srch.prepare(problem, optimizer, folds=folds, seed=seed, epochs=epochs, batch_size=batch_size,
                       problem_options=problem_options, device=device)
    result: dict[str, Any] = {
        "problem": problem, "optimizer": ctx.optimizer, "method": method, "metric_name": ctx.metric_name,
        "higher_is_better": ctx.higher_is_better, "folds": folds or 1, "space": [d.to_json() for d in dims],
        "defaults": dict(ctx.defaults), "seed": seed, "trials": [], "best": None, "range_test": None,
        "rerun": None, "storage": None, "study": None}
    records: list[dict[str, Any]]
    if method == "range-test":
        # by name: each seed's initial weights come from the problem's own builder (its init rule)
        res = rt.lr_range_test(problem, ctx.optimizer, seeds=3, seed=seed, iterations=range_iterations,
                               lr_min=range_lr[0], lr_max=range_lr[1],
                               batch_size=ctx.defaults["batch_size"] or "full", problem_options=problem_options,
                               device=device)
        result["range_test"] = res.to_json()
        records = []
    elif storage is not None or method == "optuna":
        from ravine.tune import study as st

        name = study or f"{problem}-{ctx.optimizer}-{method}"
        result["study"] = name
        result["storage"] = storage if storage is None or "://" not in storage else st._safe_url(storage)
        if storage is None and out_dir is None:
            raise ConfigError("Invalid storage: none and no --out (allowed: give one of them)")
        the_study, created = st.open_study(storage, name, higher_is_better=ctx.higher_is_better, folder=out_dir,
                                           seed=seed)
        if collect:
            pass
        elif method == "optuna":
            st.run_tpe(ctx, the_study, dims, trials, batch=batch, progress=progress)
        else:
            configs = _configs(method, dims, trials, seed, ctx)
            st.enqueue_once(the_study, created, configs)
            st.run_queue(ctx, the_study, batch=batch, progress=progress)
        records = st.study_records(the_study)
    else:
        if method == "log-then-fine":
            found = srch.log_then_fine(ctx, coarse_epochs=min(3, ctx.defaults["epochs"]), progress=progress,
                                       base={k: v for k, v in _fixed(dims).items() if k != "lr"})
        else:
            found = srch.evaluate(ctx, _configs(method, dims, trials, seed, ctx), stage=method, progress=progress)
        records = [t.to_json() for t in found]
    result["trials"] = records
    candidates = [r for r in records if r.get("stage") != "coarse"] or records
    finite = [r for r in candidates if isinstance(r.get("score"), float | int) and math.isfinite(r["score"])
              and r.get("status") == "ok"]
    if finite:
        best = min(finite, key=lambda r: (ctx.key(r["score"]), r["number"]))
        result["best"] = {"number": best["number"], "config": best["config"], "score": best["score"]}
        if rerun_best:
            result["rerun"] = srch.rerun(ctx, best["config"], seeds=rerun_seeds)
    result["wall_time"] = time.perf_counter() - start
    if out_dir is not None:
        from ravine.tune.report import write_report
        from ravine.utils import write_json

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "tune.json", result)
        write_report(out, result)
    return result


def _fixed(dims: Sequence[srch.Dimension]) -> dict[str, Any]:
    """Dimensions with a single value (fixed settings that ride along with a protocol)."""
    return {d.name: d.choices[0] for d in dims if d.choices is not None and len(d.choices) == 1}


def _configs(method: str, dims: Sequence[srch.Dimension], trials: int, seed: int, ctx: srch.Context
             ) -> list[dict[str, Any]]:
    if method == "grid":
        configs = srch.grid(dims)
        if len(configs) > 10_000:
            raise ConfigError(f"Invalid space: a grid of {len(configs)} configurations (allowed: at most 10000; "
                              "use --method random or optuna)")
        return configs
    if method == "log-then-fine":
        return []
    return srch.random_configs(dims, trials, seed)
