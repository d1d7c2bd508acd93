"""Run configs for ``ravine train``: a TOML file validated into a :class:`TrainConfig`.

Example config (every key optional except what differs from the defaults)::

    problem = "digits-mlp"
    optimizer = "momentum"      # or a table: [optimizer] name = "momentum", momentum = 0.9
    lr = 0.05                   # default: the problem's lr for this optimizer
    epochs = 20                 # default: the problem's
    batch_size = 64             # an integer, "full" (full batch) or "auto" (the problem's)
    seed = 0
    device = "auto"             # cpu, cuda, cuda:N, auto
    dtype = "float32"           # or "float64"
    ema = 0.9                   # smoothing of the loss EMA
    eval_every = 0              # also validate every n iterations (0: only per epoch)
    divergence_factor = 1e6
    nproc = 1                   # data-parallel processes

    [hyper]                     # optimizer hyperparameters
    momentum = 0.9

    [schedule]                  # or [[schedule]] tables for several
    name = "step"
    every = 10

    [problem_options]
    standardize = true

Python 3.11's ``tomllib`` parses the file; every key and value is checked here
(optimizer and schedule hyperparameters by their own registries), so a typo
fails before any training with a one-line :class:`ravine.errors.ConfigError`.

Example:
    >>> cfg = TrainConfig.from_dict({"optimizer": "sgd", "lr": 0.1, "epochs": 3})
    >>> cfg.batch_size, cfg.epochs
    ('auto', 3)
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ravine.errors import ConfigError, RavineError, UnknownNameError, check_int, check_range, unknown_name

DTYPES = {"float32": torch.float32, "float64": torch.float64}

#: the ranges ``ravine compare`` and ``ravine train`` both accept (one validator: :func:`check_run_settings`)
MAX_EPOCHS = 100_000
MAX_SEED = 2**32 - 1  # scikit-learn's and NumPy's seeds stop here
MAX_BATCH_SIZE = 2**31 - 1


def max_nproc() -> int:
    """The most data-parallel processes allowed: one per CPU core (each rank is a full process).

    Two are always allowed, so data-parallel runs can be tried (and tested) on a one-core machine.
    """
    return max(2, os.cpu_count() or 1)


def check_run_settings(*, lr: Any = None, epochs: Any = None, batch_size: Any = None, seed: Any = None,
                       nproc: Any = None, names: dict[str, str] | None = None) -> None:
    """Check the settings every run shares, with the same ranges for ``compare`` and ``train``.

    lr: a finite number > 0; epochs: integer in [1, MAX_EPOCHS]; batch_size: integer
    >= 1, "full" or "auto" (None means full batch); seed: integer in [0, 2^32 - 1];
    nproc: integer in [1, number of CPU cores]. ``names`` renames fields in the
    messages (``{"lr": "--lr"}`` on the command line). Raises ``ConfigError``.

    Example:
        >>> check_run_settings(lr=0.1, epochs=3, batch_size="full", seed=0)
        >>> check_run_settings(epochs=0)
        Traceback (most recent call last):
        ...
        ravine.errors.ConfigError: Invalid epochs: 0 (allowed: integer in [1, 100000])
    """
    name = (names or {}).get
    if lr is not None:
        check_range(name("lr", "lr"), lr, 0.0, low_inclusive=False, error=ConfigError)
    if epochs is not None:
        check_int(name("epochs", "epochs"), epochs, 1, MAX_EPOCHS, error=ConfigError)
    if batch_size is not None and batch_size not in ("full", "auto"):
        if isinstance(batch_size, str):
            raise ConfigError(f"Invalid {name('batch_size', 'batch_size')}: {batch_size!r} "
                              "(allowed: integer >= 1, 'full', 'auto')")
        check_int(name("batch_size", "batch_size"), batch_size, 1, MAX_BATCH_SIZE, error=ConfigError)
    if seed is not None:
        check_int(name("seed", "seed"), seed, 0, MAX_SEED, error=ConfigError)
    if nproc is not None:
        limit = max_nproc()
        try:
            check_int(name("nproc", "nproc"), nproc, 1, limit, error=ConfigError)
        except ConfigError:
            raise ConfigError(f"Invalid {name('nproc', 'nproc')}: {nproc!r} (allowed: integer in [1, {limit}], "
                              f"at most one process per CPU core; this machine has {os.cpu_count()})") from None


@dataclass
class TrainConfig:
    """One training run's settings (the keys of the TOML file; see the module docstring)."""

    problem: str = "digits-mlp"
    optimizer: str = "adam"
    lr: float | None = None
    hyper: dict[str, Any] = field(default_factory=dict)
    schedule: list[dict[str, Any]] = field(default_factory=list)
    epochs: int | None = None
    batch_size: int | str = "auto"
    seed: int = 0
    device: str = "auto"
    dtype: str = "float32"
    ema: float = 0.9
    eval_every: int = 0
    divergence_factor: float = 1e6
    nproc: int = 1
    problem_options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrainConfig:
        """Validate a parsed config; raises ``ConfigError`` naming the field and what is allowed."""
        raw = dict(raw)
        allowed = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(raw) - set(allowed))
        if unknown:
            raise unknown_name("config key", unknown[0], allowed, error=ConfigError)
        if isinstance(raw.get("optimizer"), dict):  # [optimizer] table: name + hyperparameters
            table = dict(raw["optimizer"])
            if "name" not in table:
                raise ConfigError("Invalid optimizer: the [optimizer] table needs a 'name' key")
            raw["optimizer"] = table.pop("name")
            raw["hyper"] = {**table, **_table(raw, "hyper")}
        hyper = _table(raw, "hyper")
        if "lr" in hyper:  # lr given once under [hyper] (or [optimizer]) is the run's lr; twice is an error
            if "lr" in raw:
                raise ConfigError(f"Invalid [hyper] lr: {hyper['lr']!r} (allowed: set lr once; the top-level "
                                  f"lr = {raw['lr']!r} is set too)")
            raw["hyper"] = {k: v for k, v in hyper.items() if k != "lr"}
            raw["lr"] = hyper["lr"]
        if isinstance(raw.get("schedule"), dict):
            raw["schedule"] = [raw["schedule"]]
        cfg = cls(**raw)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Check every field (see :meth:`from_dict`)."""
        _check_str("problem", self.problem)
        _check_str("optimizer", self.optimizer)
        check_run_settings(lr=self.lr, epochs=self.epochs, batch_size=self.batch_size, seed=self.seed,
                           nproc=self.nproc)
        for name in ("hyper", "problem_options"):
            if not isinstance(getattr(self, name), dict):
                raise ConfigError(f"Invalid {name}: {getattr(self, name)!r} (allowed: a table of key = value)")
        if not isinstance(self.schedule, list) or not all(isinstance(s, dict) for s in self.schedule):
            raise ConfigError(f"Invalid schedule: {self.schedule!r} (allowed: a [schedule] table with a 'name')")
        _check_str("device", self.device)
        if self.dtype not in DTYPES:
            raise ConfigError(f"Invalid dtype: {self.dtype!r} (allowed: {', '.join(DTYPES)})")
        check_range("ema", self.ema, 0.0, 1.0, high_inclusive=False, error=ConfigError)
        check_int("eval_every", self.eval_every, 0, error=ConfigError)
        check_range("divergence_factor", self.divergence_factor, 1.0, low_inclusive=False, error=ConfigError)
        if "lr" in self.hyper:
            raise ConfigError("Invalid hyper: lr inside hyper (allowed: lr as its own setting)")
        self._check_registries()

    def _check_registries(self) -> None:
        """Names and hyperparameters, checked by building them on a throw-away parameter."""
        from ravine import optim, problems, schedules

        probe = torch.nn.Parameter(torch.zeros(1))
        get_problem = getattr(problems, "get", None)  # None only while the registry is being written
        try:
            if get_problem is not None:
                get_problem(self.problem)
        except RavineError as exc:
            raise _within("problem", exc) from None
        try:
            entry = optim.info(self.optimizer)
        except RavineError as exc:
            raise _within("optimizer", exc) from None
        if self.nproc > 1 and entry.closure not in ("none", "loss"):
            raise ConfigError(f"Invalid nproc: {self.nproc} for optimizer {entry.name!r} (closure {entry.closure!r}; "
                              "allowed with nproc > 1: optimizers whose step needs the gradient or a loss closure)")
        try:
            optim.create(self.optimizer, [probe], **{**self.hyper, **({"lr": self.lr} if self.lr is not None else {})})
        except RavineError as exc:
            raise _within("[hyper]", exc) from None
        for table in self.schedule:
            hyper = {k: v for k, v in table.items() if k != "name"}
            try:
                name = table.get("name")
                if not isinstance(name, str):
                    raise ConfigError(f"Invalid name: {name!r} (allowed: one of {', '.join(schedules.names())})")
                schedules.create(name, torch.optim.SGD([probe], lr=0.1, momentum=0.9), **hyper)
            except RavineError as exc:
                raise _within("[schedule]", exc) from None

    def to_dict(self) -> dict[str, Any]:
        """The config as plain data (stored in checkpoints)."""
        return dataclasses.asdict(self)

    def spec(self, instance: Any = None) -> Any:
        """The resolved :class:`ravine.train.spec.RunSpec` of this config (builds the problem unless ``instance``)."""
        from ravine.train.spec import resolve_spec

        batch = None if self.batch_size == "full" else self.batch_size
        return resolve_spec(self.problem, self.optimizer, lr=self.lr, batch_size=batch, epochs=self.epochs,
                            hyper=self.hyper, schedule=[dict(s) for s in self.schedule] or None, seed=self.seed,
                            device=self.device, dtype=self.dtype, ema=self.ema,
                            problem_options=self.problem_options, instance=instance)

    def fit_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :func:`ravine.train.fit` this config stands for."""
        batch = None if self.batch_size == "full" else self.batch_size
        return {"epochs": self.epochs, "batch_size": batch, "lr": self.lr, "hyper": dict(self.hyper),
                "schedule": [dict(s) for s in self.schedule] or None, "seed": self.seed, "device": self.device,
                "dtype": DTYPES[self.dtype], "ema": self.ema, "eval_every": self.eval_every or None,
                "divergence_factor": self.divergence_factor, "problem_options": dict(self.problem_options),
                "config": self.to_dict()}


def _within(section: str, exc: RavineError) -> ConfigError:
    """``exc`` as a ConfigError that names the config section, without saying "Invalid" twice.

    Example:
        >>> str(_within("[hyper]", ConfigError("Invalid momentum: 1.5 (allowed: 0 <= momentum < 1)")))
        'Invalid [hyper] momentum: 1.5 (allowed: 0 <= momentum < 1)'
    """
    text = str(exc)
    if isinstance(exc, UnknownNameError) or text.startswith(f"Invalid {section}"):  # names its field already
        return ConfigError(text)
    if text.startswith("Invalid "):
        return ConfigError(f"Invalid {section} {text[len('Invalid '):]}")
    return ConfigError(f"Invalid {section}: {text}")


def _table(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"Invalid {key}: {value!r} (allowed: a table of key = value)")
    return value


def _check_str(field_name: str, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"Invalid {field_name}: {value!r} (allowed: a non-empty string)")


def load_config(path: str | os.PathLike, **overrides: Any) -> TrainConfig:
    """Read and validate a TOML config; ``overrides`` (not None) replace file values.

    Example:
        >>> load_config("run.toml", seed=3)  # doctest: +SKIP
    """
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"Invalid config: no file {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Invalid config {path}: not valid TOML ({exc})") from None
    except OSError as exc:
        raise ConfigError(f"Invalid config {path}: cannot read it ({exc.strerror})") from None
    raw.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig.from_dict(raw)


def train_from_config(config: TrainConfig, out_dir: str | os.PathLike, *, resume: bool = False,
                      progress: Any = None, raise_on_divergence: bool = True) -> Any:
    """Run ``config`` (on ``config.nproc`` processes when > 1) and return the history (a ``History``).

    Files go to ``out_dir`` (written by rank 0 only): ``checkpoint.pt``,
    ``iterations.csv``, ``epochs.csv``, ``evals.csv``, ``metrics.jsonl``,
    ``history.json`` and ``config.json``.

    Raises:
        DivergenceError: when the run diverged and ``raise_on_divergence``.

    Example:
        >>> history = train_from_config(TrainConfig(epochs=2), "runs/demo")  # doctest: +SKIP
    """
    from ravine.train import distributed as ddp
    from ravine.utils import resolve_device, write_json

    out = Path(out_dir)
    device = resolve_device(config.device)
    if ddp.init_from_env(device):  # started by torchrun: this process is one rank already
        if ddp.world()[0] == 0:
            write_json(out / "config.json", config.to_dict())
        return _run_rank(config.to_dict(), str(out), resume, progress, raise_on_divergence)
    if config.nproc == 1:
        write_json(out / "config.json", config.to_dict())
        return _run_rank(config.to_dict(), str(out), resume, progress, raise_on_divergence)
    import torch.multiprocessing as mp

    write_json(out / "config.json", config.to_dict())
    queue = mp.get_context("spawn").SimpleQueue()
    ddp.launch(config.nproc, _spawned_rank, config.to_dict(), str(out), resume, raise_on_divergence, queue,
               device=str(device))
    if not queue.empty():  # rank 0 failed with a bad-input error (one line)
        from ravine import errors

        cls_name, message = queue.get()
        raise getattr(errors, cls_name, RavineError)(message)
    return _read_history(out / "history.json")


def _read_history(path: Path) -> Any:
    """A history written by rank 0 (JSON's nulls back to NaN, except momentum's "no momentum")."""
    import json

    from ravine.train.results import History

    return History.from_json(json.loads(path.read_text(encoding="utf-8")))


def _run_rank(cfg: dict[str, Any], out_dir: str, resume: bool, progress: Any,
              raise_on_divergence: bool) -> Any:
    from ravine.train.loop import fit

    config = TrainConfig(**cfg)
    result = fit(config.problem, config.optimizer, out_dir=out_dir, resume=resume, progress=progress,
                 raise_on_divergence=raise_on_divergence, **config.fit_kwargs())
    return result.history


def _spawned_rank(cfg: dict[str, Any], out_dir: str, resume: bool, raise_on_divergence: bool, queue: Any) -> None:
    """One spawned rank; rank 0 reports a bad-input error through ``queue`` (its history is in history.json)."""
    import torch.distributed as dist

    try:
        _run_rank(cfg, out_dir, resume, None, raise_on_divergence)
    except RavineError as exc:
        # Only a one-line message goes through the pipe: a big payload would block the child until the
        # parent reads, and the parent reads only after the children have exited.
        if dist.get_rank() == 0:
            queue.put((type(exc).__name__, str(exc)))
