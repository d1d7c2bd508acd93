"""Optuna as the engine of larger searches, and the storage that lets several workers share one study.

- ``storage=None`` (default): a ``JournalStorage`` file (``study.journal`` in the
  output folder). Optuna's docs recommend the journal over SQLite for parallel
  writers: SQLite locks the whole file. Several processes on one machine (or on
  machines sharing an NFS folder) can share it.
- ``storage="path/to/file.journal"``: the same, at that path.
- any database URL Optuna accepts (``postgresql://user@host/db``,
  ``mysql+pymysql://...``, ``sqlite:///file.db``): workers on several machines
  point at one database and one ``study`` name.

Two ways to search with a study:

- :func:`run_tpe` — Optuna's TPE sampler (seeded) proposes each configuration;
  a median pruner (``MedianPruner``) stops a trial whose validation metric after
  an epoch is worse than the median of earlier trials at that epoch (first fold).
- :func:`run_queue` — a fixed list (a grid or random draws) is enqueued once, by
  the worker that creates the study; every worker pops waiting trials (Optuna
  hands each waiting trial to one worker: the storage changes its state from
  WAITING to RUNNING atomically) and evaluates the ones it popped as one
  batched computation.

Each trial's record (configuration, per-fold metrics, time) is stored as the
trial's user attribute ``ravine`` (JSON), so whichever worker finishes last can
write the whole study to ``tune.json``.

Example:
    >>> study = open_study(None, "demo", higher_is_better=True, folder="/tmp/ravine-demo")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ravine.errors import ConfigError, check_int
from ravine.tune.search import Context, Dimension, Trial, evaluate

ProgressFn = Callable[[int, int, str], None]
_ATTR = "ravine"
_ENQUEUED = "ravine_enqueued"


def _optuna() -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def storage_of(storage: str | None, folder: str | Path | None) -> Any:
    """The Optuna storage for ``storage`` (None: a journal file in ``folder``; a path; or a database URL)."""
    optuna = _optuna()
    from optuna.storages.journal import JournalFileBackend

    if storage is None:
        if folder is None:
            raise ConfigError("Invalid storage: none (allowed: a journal file path or a database URL; "
                              "or give an output folder)")
        path = Path(folder) / "study.journal"
    elif "://" in storage:
        storage = _driver_url(storage)
        # Workers started together on a fresh database race to create Optuna's tables; the loser's
        # CREATE fails on a unique constraint, and a retry finds the tables made.
        for attempt in range(6):
            try:
                return optuna.storages.RDBStorage(storage, heartbeat_interval=None)
            except Exception as exc:  # noqa: BLE001 - SQLAlchemy raises many kinds; one line for the user
                detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                if attempt < 5 and ("duplicate" in detail.lower() or "already exists" in detail.lower()):
                    time.sleep(0.3 * (attempt + 1))
                    continue
                raise ConfigError(f"Invalid storage: {_safe_url(storage)} ({detail[:200]})") from None
    else:
        path = Path(storage)
    path.parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(JournalFileBackend(str(path)))


def _driver_url(url: str) -> str:
    """``postgresql://`` → ``postgresql+psycopg2://`` (SQLAlchemy 2.1's default driver is psycopg 3, the
    ``postgres`` extra installs psycopg2-binary); other URLs unchanged."""
    scheme, sep, rest = url.partition("://")
    if scheme not in ("postgresql", "postgres"):
        return url
    try:
        import psycopg  # noqa: F401

        return "postgresql" + sep + rest
    except ImportError:
        pass
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        raise ConfigError("Invalid storage: postgresql needs a driver (allowed: install the extra "
                          "`pip install 'ravine[postgres]'`)") from None
    return "postgresql+psycopg2" + sep + rest


def _safe_url(url: str) -> str:
    # never echo a password
    head, sep, tail = url.partition("://")
    if "@" in tail:
        cred, _, host = tail.rpartition("@")
        user = cred.split(":", 1)[0]
        tail = f"{user}:***@{host}" if ":" in cred else f"{user}@{host}"
    return head + sep + tail


def open_study(storage: str | None, name: str, *, higher_is_better: bool, folder: str | Path | None = None,
               seed: int = 0) -> tuple[Any, bool]:
    """Create the study or load it when another worker made it; returns ``(study, created)``."""
    optuna = _optuna()
    store = storage_of(storage, folder)
    direction = "maximize" if higher_is_better else "minimize"
    sampler = optuna.samplers.TPESampler(seed=seed)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    try:
        study = optuna.create_study(storage=store, study_name=name, direction=direction, sampler=sampler,
                                    pruner=pruner, load_if_exists=False)
        return study, True
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=name, storage=store, sampler=sampler, pruner=pruner)
        if study.direction.name.lower() != direction:
            raise ConfigError(f"Invalid study: {name!r} exists with direction {study.direction.name.lower()} "
                              f"(allowed: a new name, or the same problem)") from None
        return study, False


def _clean(value: Any) -> Any:
    """NaN / inf → None so every storage can hold it as JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _tell(study: Any, trial: Any, record: Trial, pruned: bool = False) -> None:
    optuna = _optuna()
    rec = record.to_json()
    for fold in rec["folds"]:
        fold.pop("loss_curve", None)  # kept in tune.json of the worker that ran it, not in the database
    trial.set_user_attr(_ATTR, json.dumps(_clean(rec)))
    if pruned:
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    elif record.status != "ok" or not math.isfinite(record.score):
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
    else:
        study.tell(trial, record.score)


def enqueue_once(study: Any, created: bool, configs: Sequence[Mapping[str, Any]], wait_s: float = 120.0) -> None:
    """The creating worker enqueues ``configs`` and marks the study; the others wait for the mark."""
    if created:
        for i, c in enumerate(configs):
            study.enqueue_trial({}, user_attrs={"ravine_config": json.dumps(dict(c)), "ravine_index": i})
        study.set_user_attr(_ENQUEUED, len(configs))
        return
    deadline = time.monotonic() + wait_s
    while _ENQUEUED not in study.user_attrs:
        if time.monotonic() > deadline:
            raise ConfigError(f"Invalid study: {study.study_name!r} has no trial list after {wait_s:.0f} s "
                              "(allowed: a study made by `ravine tune --method grid|random`)")
        time.sleep(0.2)


def run_queue(ctx: Context, study: Any, *, batch: int = 8, progress: ProgressFn | None = None) -> int:
    """Pop waiting trials ``batch`` at a time, evaluate each batch as one batched run, tell the results.

    Returns the number of trials this worker evaluated.
    """
    optuna = _optuna()
    batch = check_int("batch", batch, 1, 10_000, error=ConfigError)
    waiting_state = (optuna.trial.TrialState.WAITING,)
    done = 0
    total = int(study.user_attrs.get(_ENQUEUED, 0))
    while True:
        asked: list[tuple[Any, dict[str, Any], int]] = []
        for _ in range(batch):
            if not study.get_trials(deepcopy=False, states=waiting_state):
                break
            trial = study.ask()
            text = trial.user_attrs.get("ravine_config")
            if text is None:  # another worker took the last waiting trial first: this one is empty
                trial.set_user_attr("ravine_stray", True)
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                break
            asked.append((trial, json.loads(text), int(trial.user_attrs.get("ravine_index", trial.number))))
        if not asked:
            return done
        records = evaluate(ctx, [c for _, c, _ in asked], stage="queue")
        for (trial, _, index), record in zip(asked, records, strict=True):
            record.number = index
            _tell(study, trial, record)
        done += len(asked)
        if progress is not None:
            finished = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,
                                                                    optuna.trial.TrialState.FAIL)))
            progress(min(finished, total), total, "queue")


def _suggest(trial: Any, dim: Dimension) -> Any:
    if dim.choices is not None:
        return trial.suggest_categorical(dim.name, dim.choices)
    if dim.name in ("batch_size", "epochs") or dim.name.endswith((".every", ".period")):
        return trial.suggest_int(dim.name, int(dim.low), int(dim.high), log=dim.log)
    return trial.suggest_float(dim.name, dim.low, dim.high, log=dim.log)


def run_tpe(ctx: Context, study: Any, space: Sequence[Dimension], trials: int, *, batch: int = 1,
            prune: bool = True, progress: ProgressFn | None = None) -> int:
    """Run ``trials`` TPE trials in this worker, ``batch`` proposals at a time (one batched run each).

    With ``prune``, each proposal reports its validation metric after every epoch
    of the first fold; the median pruner stops the ones below the median of the
    earlier trials at that epoch. Returns the number of trials run.
    """
    optuna = _optuna()
    trials = check_int("trials", trials, 1, 100_000, error=ConfigError)
    batch = check_int("batch", batch, 1, 10_000, error=ConfigError)
    done = 0
    while done < trials:
        k = min(batch, trials - done)
        asked = [study.ask() for _ in range(k)]
        configs = [{d.name: _suggest(t, d) for d in space} for t in asked]
        pruned: set[int] = set()

        def on_epoch(fold: int, epoch: int, hists: list[dict[str, Any]]) -> list[int]:
            if not prune or fold != 0:
                return []
            for i, (t, h) in enumerate(zip(asked, hists, strict=True)):
                if i in pruned or h["status"] != "ok" or not h["epoch"]["val_metric"]:
                    continue
                value = h["epoch"]["val_metric"][-1]
                if math.isfinite(value):
                    t.report(value, epoch)
                    if t.should_prune():
                        pruned.add(i)
            return sorted(pruned)

        records = evaluate(ctx, configs, stage="optuna", on_epoch=on_epoch)
        for i, (t, record) in enumerate(zip(asked, records, strict=True)):
            record.number = t.number
            if i in pruned:
                record.status = "pruned"
            _tell(study, t, record, pruned=i in pruned)
        done += k
        if progress is not None:
            progress(done, trials, "optuna")
    _ = optuna
    return done


def study_records(study: Any) -> list[dict[str, Any]]:
    """Every trial of the study with a ravine record (from any worker), by trial number; strays left out."""
    out = []
    for t in study.get_trials(deepcopy=False):
        text = t.user_attrs.get(_ATTR)
        if text is None:
            continue
        rec = json.loads(text)
        rec["optuna_number"] = t.number
        rec["state"] = t.state.name
        out.append(rec)
    return sorted(out, key=lambda r: r["optuna_number"])
