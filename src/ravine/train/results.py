"""Typed results: what a training run, ``ravine compare`` and ``ravine train`` return and write.

Everything here is plain data (no tensors, no modules): dataclasses whose
``to_json()`` is a dict of lists, numbers, strings, booleans and None (NaN and
±inf become None when written by :func:`ravine.utils.write_json`) and whose
``from_json()`` reads that dict back (None in a float column becomes NaN again).
The report, the command line and the tests read these types, never nested
dicts with ``.get(..., {})``.

JSON schema (``results.json`` of ``ravine compare``; ``history.json`` of a run
folder is one ``History``)::

    CompareResult = {
      "schema": 1, "kind": "compare",
      "problem": str, "metric_name": str, "higher_is_better": bool,
      "target": float | null,            # validation metric whose first crossing is "to target"
      "reference_error": float | null,   # null: unknown (the user's own data)
      "seed": int, "device": str, "epochs": int,
      "requested": {...},                # the settings as the caller gave them (lr, batch_size, ...)
      "optimizers": [str],               # in the order asked for
      "complete": bool,                  # false after Ctrl-C: some runs are missing
      "missing": [str],                  # the optimizers not finished yet (``compare --resume`` runs them)
      "wall_time": float,                # seconds, this call (not the resumed ones before it)
      "runs": {name: RunResult}}

    RunResult = {"name": str, "spec": RunSpec (see ravine.train.spec), "history": History,
                 "summary": Summary, "diagnosis": Verdict, "extras": {name: {column: [...]}}}
                 # extras["effective_step"] = {"step", "value", "epoch_end_step", "epoch_mean"}

    History = {
      "iteration": {"step", "epoch", "loss", "loss_ema", "lr", "momentum", "grad_evals", "time"},
      "epoch":     {"epoch", "iteration", "time", "train_loss", "train_metric", "val_loss", "val_metric",
                    "lr", "grad_evals"},
      "eval":      {"step", "epoch", "val_loss", "val_metric"},
      "test": {"loss": float, "metric": float} | null,
      "status": "ok" | "diverged" | "interrupted", "message": str, "wall_time": float,
      "metric_name": str, "higher_is_better": bool}
      # every inner entry is a column: a list with one value per row

    Summary = {"status", "message", "final_train_loss", "best_val_metric", "best_val_epoch", "test_metric",
               "test_loss", "epochs_run", "iterations", "epochs_to_target", "time_to_target", "wall_time"}

    Verdict = {"kind": str, "explanation": str, "numbers": {str: float | null}, ...}

    TrainResult (``ravine train``) = {"schema": 1, "kind": "train", "spec": RunSpec, "history": History,
                                      "summary": Summary, "diagnosis": Verdict, "target": float | null,
                                      "reference_error": float | null, "out_dir": str | null}

Column meanings: ``iteration.step`` counts optimizer steps from 1;
``iteration.epoch`` is fractional (end of the step); ``loss`` is the
minibatch loss before the step, ``loss_ema`` its moving average;
``grad_evals`` is the cumulative number of gradient evaluations in units of
the whole training set (a minibatch of b of n rows adds b/n; a closure call
with a gradient on the full batch adds 1; loss-only line-search trials and the
second-order work of Newton / Gauss–Newton add nothing — see ``time`` for the
cost); ``time`` is seconds since the start of training. ``epoch`` rows: epoch
0 is the untrained model; train_* are measured on the whole training split in
eval mode; ``lr`` is the rate used during that epoch.

Example:
    >>> h = History(metric_name="accuracy", higher_is_better=True)
    >>> h.epochs.append(epoch=0, iteration=0, time=0.0, train_loss=2.3, train_metric=0.1, val_loss=2.3,
    ...                 val_metric=0.1, lr=0.1, grad_evals=0.0)
    >>> History.from_json(h.to_json()) == h
    True
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ravine.train.spec import RunSpec

SCHEMA_VERSION = 1
STATUSES = ("ok", "diverged", "interrupted")


def _float_or_nan(value: Any) -> float:
    return math.nan if value is None else float(value)


def _plain(value: Any) -> Any:
    """Tuples to lists, keys to str: what JSON would give back."""
    return json.loads(json.dumps(value, default=str, allow_nan=True))


class _Columns:
    """Rows stored as columns (one list per field); ``row["col"]`` reads a column (backward compatible)."""

    #: columns that hold floats: None read from JSON becomes NaN
    FLOATS: ClassVar[tuple[str, ...]] = ()
    #: columns that may hold None as a value (e.g. momentum of an optimizer without momentum)
    NULLABLE: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def columns(cls) -> tuple[str, ...]:
        """The column names, in file order."""
        return tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]

    def append(self, **row: Any) -> None:
        """Append one row; every column must be given."""
        cols = self.columns()
        if set(row) != set(cols):
            raise ValueError(f"row keys {sorted(row)} differ from the columns {list(cols)}")
        for name in cols:
            getattr(self, name).append(row[name])

    def __len__(self) -> int:
        return len(getattr(self, self.columns()[0]))

    def __getitem__(self, column: str) -> list[Any]:
        if column not in self.columns():
            raise KeyError(column)
        return getattr(self, column)

    def __iter__(self) -> Iterator[str]:
        return iter(self.columns())

    def keys(self) -> tuple[str, ...]:
        """The column names (so ``dict(rows)`` works)."""
        return self.columns()

    def values(self) -> Iterator[list[Any]]:
        """The columns' lists."""
        return (getattr(self, c) for c in self.columns())

    def items(self) -> Iterator[tuple[str, list[Any]]]:
        """``(column, values)`` pairs."""
        return ((c, getattr(self, c)) for c in self.columns())

    def to_json(self) -> dict[str, list[Any]]:
        """``{column: [values]}`` (copies of the lists)."""
        return {c: list(getattr(self, c)) for c in self.columns()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Any:
        """Read ``{column: [values]}``; a column missing (older files) is filled with None / NaN."""
        data = data or {}
        n = max((len(v) for v in data.values() if isinstance(v, list)), default=0)
        kwargs = {}
        for c in cls.columns():
            values = list(data.get(c, [None] * n))
            if c in cls.FLOATS and c not in cls.NULLABLE:
                values = [_float_or_nan(v) for v in values]
            kwargs[c] = values
        return cls(**kwargs)


@dataclass
class IterationRows(_Columns):
    """One row per optimizer step (see the module docstring for each column)."""

    step: list[int] = field(default_factory=list)
    epoch: list[float] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    loss_ema: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    momentum: list[float | None] = field(default_factory=list)
    grad_evals: list[float] = field(default_factory=list)
    time: list[float] = field(default_factory=list)

    FLOATS: ClassVar[tuple[str, ...]] = ("epoch", "loss", "loss_ema", "lr", "momentum", "grad_evals", "time")
    NULLABLE: ClassVar[tuple[str, ...]] = ("momentum",)


@dataclass
class EpochRows(_Columns):
    """One row per epoch; epoch 0 is the evaluation before training."""

    epoch: list[int] = field(default_factory=list)
    iteration: list[int] = field(default_factory=list)
    time: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    train_metric: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_metric: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    grad_evals: list[float] = field(default_factory=list)

    FLOATS: ClassVar[tuple[str, ...]] = ("time", "train_loss", "train_metric", "val_loss", "val_metric", "lr",
                                         "grad_evals")


@dataclass
class EvalRows(_Columns):
    """The extra validations of ``eval_every`` (one row each)."""

    step: list[int] = field(default_factory=list)
    epoch: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_metric: list[float] = field(default_factory=list)

    FLOATS: ClassVar[tuple[str, ...]] = ("epoch", "val_loss", "val_metric")


@dataclass
class TestResult:
    """The final evaluation on the test split (touched only once, at the end)."""

    __test__: ClassVar[bool] = False  # not a pytest class

    loss: float
    metric: float

    def __getitem__(self, key: str) -> float:  # backward compatible: history["test"]["metric"]
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        """``dict.get`` for code written against the old dict."""
        return getattr(self, key, default)

    def to_json(self) -> dict[str, float]:
        """``{"loss", "metric"}``."""
        return {"loss": self.loss, "metric": self.metric}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> TestResult | None:
        """None stays None (a diverged run has no test evaluation)."""
        if data is None:
            return None
        return cls(_float_or_nan(data.get("loss")), _float_or_nan(data.get("metric")))


_HISTORY_SECTIONS = {"iteration": "iterations", "epoch": "epochs", "eval": "evals"}


@dataclass
class History:
    """Everything one training run recorded.

    Attributes:
        iterations: per optimizer step (JSON key ``"iteration"``).
        epochs: per epoch, epoch 0 before training (JSON key ``"epoch"``).
        evals: the ``eval_every`` validations (JSON key ``"eval"``).
        test: the final test loss and metric; None when the run diverged or was interrupted.
        status: ``"ok"``, ``"diverged"`` (stopped, or its loss grew by orders of
            magnitude) or ``"interrupted"`` (Ctrl-C).
        message: why, in words, when the status is not ok.
        wall_time: seconds of training (across resumes).
        metric_name: e.g. ``"accuracy"``, ``"rmse"``.
        higher_is_better: the metric's direction.

    ``history["epoch"]["val_metric"]`` (the dict style of older code) still reads
    the same lists; new code uses ``history.epochs.val_metric``.

    Example:
        >>> h = History("rmse", False)
        >>> h.status, len(h.iterations), h.to_json()["epoch"]["val_metric"]
        ('ok', 0, [])
    """

    metric_name: str = "loss"
    higher_is_better: bool = False
    iterations: IterationRows = field(default_factory=IterationRows)
    epochs: EpochRows = field(default_factory=EpochRows)
    evals: EvalRows = field(default_factory=EvalRows)
    test: TestResult | None = None
    status: str = "ok"
    message: str = ""
    wall_time: float = 0.0

    def __getitem__(self, key: str) -> Any:  # backward compatible dict-style reads
        if key in _HISTORY_SECTIONS:
            return getattr(self, _HISTORY_SECTIONS[key])
        if key in ("test", "status", "message", "wall_time", "metric_name", "higher_is_better"):
            return getattr(self, key)
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        """``dict.get`` for code written against the old dict."""
        try:
            return self[key]
        except KeyError:
            return default

    def keys(self) -> tuple[str, ...]:
        """The JSON keys (for code written against the old dict)."""
        return ("iteration", "epoch", "eval", "test", "status", "message", "wall_time", "metric_name",
                "higher_is_better")

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    @property
    def ok(self) -> bool:
        """True when the run finished without diverging or being interrupted."""
        return self.status == "ok"

    def to_json(self) -> dict[str, Any]:
        """The plain-dict form (module docstring)."""
        return {"iteration": self.iterations.to_json(), "epoch": self.epochs.to_json(),
                "eval": self.evals.to_json(), "test": self.test.to_json() if self.test else None,
                "status": self.status, "message": self.message, "wall_time": self.wall_time,
                "metric_name": self.metric_name, "higher_is_better": self.higher_is_better}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> History:
        """Read :meth:`to_json`'s dict (or an older history.json without the newer columns)."""
        return cls(metric_name=str(data.get("metric_name", "loss")),
                   higher_is_better=bool(data.get("higher_is_better", False)),
                   iterations=IterationRows.from_json(data.get("iteration")),
                   epochs=EpochRows.from_json(data.get("epoch")),
                   evals=EvalRows.from_json(data.get("eval")),
                   test=TestResult.from_json(data.get("test")),
                   status=str(data.get("status", "ok")), message=str(data.get("message", "")),
                   wall_time=_float_or_nan(data.get("wall_time", 0.0)))


@dataclass
class Summary:
    """The numbers of one run that tables show (computed by :func:`ravine.compare.summarize`).

    Attributes:
        status, message: from the history.
        final_train_loss: the last epoch's training loss (whole split).
        best_val_metric, best_val_epoch: the best validation metric and its epoch.
        test_metric, test_loss: the final test evaluation (NaN when none).
        epochs_run, iterations: how far the run got.
        epochs_to_target, time_to_target: the first epoch (and its wall time, s)
            whose validation metric reached the target; None when never.
        wall_time: seconds of training.
    """

    status: str = "ok"
    message: str = ""
    final_train_loss: float = math.nan
    best_val_metric: float = math.nan
    best_val_epoch: int | None = None
    test_metric: float = math.nan
    test_loss: float = math.nan
    epochs_run: int = 0
    iterations: int = 0
    epochs_to_target: int | None = None
    time_to_target: float | None = None
    wall_time: float = 0.0

    def __getitem__(self, key: str) -> Any:  # backward compatible: summary["test_metric"]
        return getattr(self, key)

    def to_json(self) -> dict[str, Any]:
        """A flat dict of the fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Summary:
        """Unknown keys are ignored; floats read as None become NaN."""
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name in data:
                value = data[f.name]
                if f.name in ("final_train_loss", "best_val_metric", "test_metric", "test_loss", "wall_time"):
                    value = _float_or_nan(value)
                kwargs[f.name] = value
        return cls(**kwargs)


@dataclass
class Verdict:
    """A diagnosis of one run: its kind, the explanation in words, and the numbers behind it.

    ``extra`` keeps any further keys a diagnosis adds (they round-trip through JSON).
    """

    kind: str = "—"
    explanation: str = ""
    numbers: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:  # backward compatible: diagnosis["kind"]
        if key in ("kind", "explanation", "numbers"):
            return getattr(self, key)
        return self.extra[key]

    def to_json(self) -> dict[str, Any]:
        """``{"kind", "explanation", "numbers", **extra}``."""
        return {**_plain(self.extra), "kind": self.kind, "explanation": self.explanation,
                "numbers": _plain(self.numbers)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Verdict:
        """Read a diagnosis dict (the shape ``to_json`` writes)."""
        data = dict(data or {})
        return cls(kind=str(data.pop("kind", "—")), explanation=str(data.pop("explanation", "")),
                   numbers=dict(data.pop("numbers", {}) or {}), extra=data)


@dataclass
class RunResult:
    """One run of a comparison (or the run of ``ravine train``).

    Attributes:
        name: the optimizer's registry name (the key in ``CompareResult.runs``).
        spec: the resolved settings the run used (:class:`ravine.train.spec.RunSpec`).
        history: what it recorded.
        summary: the table numbers.
        diagnosis: the verdict.
        extras: further per-run records by name, each ``{column: [values]}``
            (``"effective_step"``: step, value, epoch_end_step, epoch_mean).
    """

    name: str
    spec: RunSpec
    history: History
    summary: Summary = field(default_factory=Summary)
    diagnosis: Verdict = field(default_factory=Verdict)
    extras: dict[str, dict[str, list[Any]]] = field(default_factory=dict)

    @property
    def effective_step(self) -> dict[str, list[Any]]:
        """``extras["effective_step"]`` or an empty dict."""
        return self.extras.get("effective_step", {})

    @property
    def batched_with(self) -> list[str]:
        """The runs this one trained with as one batched computation (itself included); empty
        when it trained alone. Their wall times are those of the shared computation."""
        return list(self.extras.get("batched", {}).get("with", []))

    def __getitem__(self, key: str) -> Any:  # backward compatible: run["summary"]["status"], run["hyper"]["lr"]
        if key == "hyper":
            return {"lr": self.spec.lr, **self.spec.hyper}
        if key == "effective_step":
            return self.effective_step
        if key in ("name", "spec", "history", "summary", "diagnosis", "extras"):
            return getattr(self, key)
        raise KeyError(key)

    def to_json(self) -> dict[str, Any]:
        """The plain-dict form (module docstring)."""
        return {"name": self.name, "spec": self.spec.to_json(), "history": self.history.to_json(),
                "summary": self.summary.to_json(), "diagnosis": self.diagnosis.to_json(),
                "extras": _plain(self.extras)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], name: str | None = None) -> RunResult:
        """Read :meth:`to_json`'s dict.

        Also reads the older run dicts (``{"hyper", "history", "summary", "diagnosis",
        "effective_step"}``, possibly holding typed parts), with a spec that knows only the lr.
        """
        name = str(data.get("name", name or ""))
        if "spec" in data:
            spec = data["spec"] if isinstance(data["spec"], RunSpec) else RunSpec.from_json(data["spec"])
        else:
            hyper = dict(data.get("hyper") or {})
            lr = hyper.pop("lr", None)
            spec = RunSpec(problem="", optimizer=name, lr=_float_or_nan(lr), batch_size=0, n_train=0, epochs=0,
                           hyper=hyper)
        history = data.get("history") or {}
        summary = data.get("summary") or {}
        diagnosis = data.get("diagnosis")
        extras = dict(data.get("extras") or {})
        if "effective_step" in data and "effective_step" not in extras:
            extras["effective_step"] = dict(data["effective_step"] or {})
        return cls(name=name, spec=spec,
                   history=history if isinstance(history, History) else History.from_json(history),
                   summary=summary if isinstance(summary, Summary) else Summary.from_json(summary),
                   diagnosis=diagnosis if isinstance(diagnosis, Verdict) else Verdict.from_json(diagnosis),
                   extras=extras)


@dataclass
class CompareResult:
    """What :func:`ravine.compare.compare` returns and writes as ``results.json``.

    Attributes:
        problem: the problem's registry name.
        metric_name, higher_is_better: the validation metric and its direction.
        target: the validation metric whose first crossing is "to target".
        reference_error: the error a good model reaches; NaN when unknown.
        seed, device, epochs: shared by every run.
        requested: the settings as the caller gave them (before resolution).
        optimizers: the optimizers asked for, in order.
        runs: the finished runs by optimizer name (resolved settings in each ``spec``).
        missing: optimizers not finished (after Ctrl-C); ``complete`` is ``not missing``.
        wall_time: seconds this call took.

    Example:
        >>> r = CompareResult("digits-mlp", optimizers=["sgd"], missing=["sgd"])
        >>> r.complete, CompareResult.from_json(r.to_json()) == r
        (False, True)
    """

    problem: str
    metric_name: str = "metric"
    higher_is_better: bool = True
    target: float | None = None
    reference_error: float = math.nan
    seed: int = 0
    device: str = "cpu"
    epochs: int = 0
    requested: dict[str, Any] = field(default_factory=dict)
    optimizers: list[str] = field(default_factory=list)
    runs: dict[str, RunResult] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    wall_time: float = 0.0

    @property
    def complete(self) -> bool:
        """False when some runs are missing (interrupted; ``compare(resume=True)`` finishes them)."""
        return not self.missing

    def __getitem__(self, key: str) -> Any:  # backward compatible: results["runs"], results["problem"]
        if key == "complete":
            return self.complete
        if key in {f.name for f in dataclasses.fields(self)}:
            return getattr(self, key)
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        """``dict.get`` for code written against the old dict."""
        try:
            return self[key]
        except KeyError:
            return default

    def to_json(self) -> dict[str, Any]:
        """The plain-dict form written as ``results.json`` (module docstring)."""
        return {"schema": SCHEMA_VERSION, "kind": "compare", "problem": self.problem,
                "metric_name": self.metric_name, "higher_is_better": self.higher_is_better,
                "target": self.target, "reference_error": self.reference_error, "seed": self.seed,
                "device": self.device, "epochs": self.epochs, "requested": _plain(self.requested),
                "optimizers": list(self.optimizers), "complete": self.complete, "missing": list(self.missing),
                "wall_time": self.wall_time, "runs": {k: v.to_json() for k, v in self.runs.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CompareResult:
        """Read :meth:`to_json`'s dict (e.g. ``json.load`` of results.json)."""
        target = data.get("target")
        runs = data.get("runs") or {}
        first = next(iter(runs.values()), None)
        if "metric_name" not in data and first is not None:  # an older dict: the runs' histories know it
            hist = first.history if isinstance(first, RunResult) else first.get("history")
            data = {**data, "metric_name": hist.get("metric_name", "metric") if hist is not None else "metric"}
        return cls(problem=str(data["problem"]), metric_name=str(data.get("metric_name", "metric")),
                   higher_is_better=bool(data.get("higher_is_better", True)),
                   target=None if target is None else float(target),
                   reference_error=_float_or_nan(data.get("reference_error")), seed=int(data.get("seed", 0)),
                   device=str(data.get("device", "cpu")), epochs=int(data.get("epochs", 0)),
                   requested=dict(data.get("requested") or {}), optimizers=list(data.get("optimizers") or []),
                   runs={k: v if isinstance(v, RunResult) else RunResult.from_json(v, k)
                         for k, v in (data.get("runs") or {}).items()},
                   missing=list(data.get("missing") or []), wall_time=_float_or_nan(data.get("wall_time", 0.0)))

    @classmethod
    def load(cls, path: str | Path) -> CompareResult:
        """Read a ``results.json`` file."""
        return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))


@dataclass
class TrainResult:
    """What ``ravine train`` produces for one run (its ``result.json`` and report).

    Attributes:
        spec: the resolved settings.
        history, summary, diagnosis: as in :class:`RunResult`.
        target, reference_error: the problem's (reference NaN when unknown).
        out_dir: the run folder, when written.
    """

    spec: RunSpec
    history: History
    summary: Summary = field(default_factory=Summary)
    diagnosis: Verdict = field(default_factory=Verdict)
    target: float | None = None
    reference_error: float = math.nan
    out_dir: str | None = None

    def as_run(self) -> RunResult:
        """This run as a :class:`RunResult` (named by its optimizer)."""
        return RunResult(self.spec.optimizer, self.spec, self.history, self.summary, self.diagnosis)

    def as_compare(self) -> CompareResult:
        """A one-run :class:`CompareResult`, so the compare report can draw it."""
        return CompareResult(self.spec.problem, self.history.metric_name, self.history.higher_is_better,
                             self.target, self.reference_error, self.spec.seed, self.spec.device,
                             self.spec.epochs, optimizers=[self.spec.optimizer],
                             runs={self.spec.optimizer: self.as_run()}, wall_time=self.history.wall_time)

    def to_json(self) -> dict[str, Any]:
        """The plain-dict form (module docstring)."""
        return {"schema": SCHEMA_VERSION, "kind": "train", "spec": self.spec.to_json(),
                "history": self.history.to_json(), "summary": self.summary.to_json(),
                "diagnosis": self.diagnosis.to_json(), "target": self.target,
                "reference_error": self.reference_error, "out_dir": self.out_dir}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TrainResult:
        """Read :meth:`to_json`'s dict."""
        target = data.get("target")
        return cls(spec=RunSpec.from_json(data["spec"]), history=History.from_json(data["history"]),
                   summary=Summary.from_json(data.get("summary", {})),
                   diagnosis=Verdict.from_json(data.get("diagnosis")),
                   target=None if target is None else float(target),
                   reference_error=_float_or_nan(data.get("reference_error")), out_dir=data.get("out_dir"))


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`ravine.train.fit`: the run's history so far (status ``"interrupted"``).

    A ``KeyboardInterrupt``, so code that does not know it still stops as on any
    Ctrl-C. The run folder keeps the checkpoint of the last finished epoch:
    ``fit(..., resume=True)`` (``ravine train --resume``) continues from it.

    Attributes:
        history: what was recorded up to the interrupt.
        out_dir: the run folder (None when nothing was written).
    """

    def __init__(self, history: History, out_dir: Path | None = None) -> None:
        super().__init__(history.message)
        self.history = history
        self.out_dir = out_dir


class CompareInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`ravine.compare.compare`, after writing what finished.

    Attributes:
        result: the partial :class:`CompareResult` (``complete`` False, ``missing``
            lists the runs ``compare(..., resume=True)`` will do).
        out_dir: where results.json and the report were written (None when not written).
    """

    def __init__(self, result: CompareResult, out_dir: Path | None = None) -> None:
        done = len(result.runs)
        super().__init__(f"interrupted: {done} of {len(result.optimizers)} runs finished; "
                         f"missing: {', '.join(result.missing)}")
        self.result = result
        self.out_dir = out_dir
