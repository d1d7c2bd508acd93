"""Metric files of a training run: CSV, JSON Lines and (optionally) TensorBoard.

Files written under the run folder:

- ``iterations.csv``: ``step, epoch, loss, loss_ema, lr, momentum, grad_evals, time`` (one row per iteration);
- ``epochs.csv``: ``epoch, iteration, time, train_loss, train_metric, val_loss, val_metric, lr, grad_evals``
  (epoch 0 is the evaluation before training);
- ``evals.csv``: ``step, epoch, val_loss, val_metric`` (the ``eval_every`` evaluations);
- ``metrics.jsonl``: every row above as ``{"kind": "iteration" | "epoch" | "eval" | "test", ...}``;
- ``tensorboard/``: the same scalars, when the ``tensorboard`` package is installed.

The writer appends rows from the history (:class:`ravine.train.results.History`) at the end of each epoch (no
per-iteration file I/O). On resume it first rewrites every file from the
checkpoint's history, so rows written after the last checkpoint vanish.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from ravine.train.loop import empty_history
    >>> writer = MetricsWriter(Path(tempfile.mkdtemp()), tensorboard=False)
    >>> writer.sync(empty_history("accuracy", True))
    >>> writer.close()
"""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path
from typing import Any

ITERATION_COLUMNS = ("step", "epoch", "loss", "loss_ema", "lr", "momentum", "grad_evals", "time")
EPOCH_COLUMNS = ("epoch", "iteration", "time", "train_loss", "train_metric", "val_loss", "val_metric", "lr",
                 "grad_evals")
EVAL_COLUMNS = ("step", "epoch", "val_loss", "val_metric")
_SECTIONS = (("iteration", "iterations.csv", ITERATION_COLUMNS),
             ("epoch", "epochs.csv", EPOCH_COLUMNS),
             ("eval", "evals.csv", EVAL_COLUMNS))


def _clean(value: Any) -> Any:
    """JSON has no NaN / inf: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class MetricsWriter:
    """Append a run's history to CSV / JSONL / TensorBoard files.

    Args:
        folder: the run folder (created if needed).
        tensorboard: write TensorBoard scalars when the package is importable;
            silently skipped otherwise.
    """

    def __init__(self, folder: Path, tensorboard: bool = True) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._written = {section: 0 for section, _, _ in _SECTIONS}
        self._files: dict[str, Any] = {}
        self._csv: dict[str, Any] = {}
        self._tb = _summary_writer(self.folder / "tensorboard") if tensorboard else None
        self._opened = False

    def _open(self) -> None:
        # "w": every open starts from the history, which is the single source of truth.
        for section, name, columns in _SECTIONS:
            fh = open(self.folder / name, "w", newline="")  # noqa: SIM115 - kept open for appends
            writer = csv.writer(fh)
            writer.writerow(columns)
            self._files[section] = fh
            self._csv[section] = writer
        self._files["jsonl"] = open(self.folder / "metrics.jsonl", "w")  # noqa: SIM115
        self._opened = True

    def sync(self, history: Any) -> None:
        """Write every row of ``history`` not yet written, then flush."""
        if not self._opened:
            self._open()
        jsonl = self._files["jsonl"]
        for section, _, columns in _SECTIONS:
            table = history[section]
            start, stop = self._written[section], len(table[columns[0]])
            for i in range(start, stop):
                row = [table[c][i] for c in columns]
                self._csv[section].writerow(["" if v is None else v for v in row])
                record = {"kind": section, **{c: _clean(v) for c, v in zip(columns, row, strict=True)}}
                jsonl.write(json.dumps(record) + "\n")
                self._tensorboard(section, record)
            self._written[section] = stop
            self._files[section].flush()
        jsonl.flush()

    def write_test(self, test: dict[str, float]) -> None:
        """Append the final test evaluation to ``metrics.jsonl``."""
        if not self._opened:
            self._open()
        self._files["jsonl"].write(json.dumps({"kind": "test", **{k: _clean(v) for k, v in test.items()}}) + "\n")
        self._files["jsonl"].flush()

    def _tensorboard(self, section: str, record: dict[str, Any]) -> None:
        if self._tb is None:
            return
        step = record["step"] if "step" in record else record["epoch"]
        for key, value in record.items():
            if key not in ("kind", "step", "epoch") and isinstance(value, int | float):
                self._tb.add_scalar(f"{section}/{key}", value, step)

    def close(self) -> None:
        """Close every file."""
        for fh in self._files.values():
            fh.close()
        self._files.clear()
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def _summary_writer(log_dir: Path) -> Any:
    """A TensorBoard ``SummaryWriter``, or None where ``tensorboard`` is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # optional extra: ravine[tensorboard]
        return None
    # Every row is rewritten from the history (see MetricsWriter), so old event files would duplicate them.
    shutil.rmtree(log_dir, ignore_errors=True)
    return SummaryWriter(log_dir=str(log_dir))
