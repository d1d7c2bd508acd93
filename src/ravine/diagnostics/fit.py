"""The course's learning-curve diagnosis: bias, variance, divergence, plateaus.

Compare three errors, all in the same units (an error rate such as
1 − accuracy, or an RMSE), where lower is better:

- the *reference error* E_ref — what a good model reaches (the "human level" or
  Bayes-error proxy of the course);
- the *training error* E_train — how well the model fits the data it saw;
- the *validation error* E_val — how well it generalizes.

Then

    avoidable bias = E_train − E_ref          variance = E_val − E_train

and a run is

1. **diverged** when the trainer stopped it (``history["status"] == "diverged"``)
   or a loss / error is NaN or infinite;
2. **stalled on a plateau** when the avoidable bias is above the tolerance *and*
   the smoothed training loss improved by less than ``plateau_rel_tol``
   (relative) over the last ``plateau_window`` fraction of the iterations — the
   optimizer stopped making progress although the fit is still poor;
3. **underfitting (high bias)** when the avoidable bias is above the tolerance
   (and the loss is still moving: more training, a bigger model or a better
   optimizer help);
4. **overfitting (high variance)** when the bias is small but the variance is
   above the tolerance (more data, regularization, early stopping help);
5. **good fit** otherwise.

The tolerance is ``max(abs_tol, rel_tol · E_ref)`` with defaults
``abs_tol = 0.02`` (two percentage points of error rate) and ``rel_tol = 0.25``
(a quarter of the reference error, so RMSE problems in their own units get a
tolerance on their own scale). Bias is checked before variance, as in the
course: fix the fit on the training set first.

Example:
    >>> d = diagnose_fit(0.30, 0.32, 0.02, None)
    >>> d.kind
    'underfitting (high bias)'
    >>> diagnose_fit(0.001, 0.12, 0.02, None).kind
    'overfitting (high variance)'
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

KINDS = (
    "underfitting (high bias)",
    "overfitting (high variance)",
    "good fit",
    "diverged",
    "stalled on a plateau",
)

ABS_TOL = 0.02
REL_TOL = 0.25
PLATEAU_WINDOW = 0.3
PLATEAU_REL_TOL = 0.01
PLATEAU_MIN_ITERATIONS = 20


@dataclass
class Diagnosis:
    """The verdict on one training run.

    Attributes:
        kind: one of :data:`KINDS`.
        explanation: the verdict in plain words, with the numbers behind it.
        numbers: ``train_error``, ``val_error``, ``reference_error``,
            ``avoidable_bias``, ``variance``, ``tolerance`` and
            ``plateau_improvement`` (relative drop of the smoothed train loss over
            the final window; None when there were too few iterations).
    """

    kind: str
    explanation: str
    numbers: dict[str, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (for JSON)."""
        return asdict(self)


def tolerance(reference_error: float, abs_tol: float = ABS_TOL, rel_tol: float = REL_TOL) -> float:
    """The bias / variance tolerance ``max(abs_tol, rel_tol · E_ref)``.

    Example:
        >>> tolerance(0.02)
        0.02
        >>> tolerance(40.0)
        10.0
    """
    return max(abs_tol, rel_tol * abs(reference_error))


def plateau_improvement(losses: list[float], window: float = PLATEAU_WINDOW,
                        min_iterations: int = PLATEAU_MIN_ITERATIONS) -> float | None:
    """Relative improvement of the smoothed loss over the last ``window`` of iterations.

    The final ``window`` fraction of the losses is split into fifths; the mean of
    the first fifth, L_a, and of the last fifth, L_b (means smooth minibatch noise)
    give ``(L_a − L_b) / |L_a|``. Positive: still falling; near 0 or negative: flat
    or rising. None when there are fewer than ``min_iterations`` losses.

    Example:
        >>> plateau_improvement([1.0] * 100)
        0.0
        >>> plateau_improvement([100.0 - i for i in range(100)]) > 0.5
        True
    """
    n = len(losses)
    if n < min_iterations:
        return None
    tail = losses[n - max(5, int(round(window * n))):]
    w = max(1, len(tail) // 5)
    start = sum(tail[:w]) / w
    end = sum(tail[-w:]) / w
    if not (math.isfinite(start) and math.isfinite(end)):
        return float("nan")
    if start == 0:
        return None
    return (start - end) / abs(start)


def _finite(*values: float | None) -> bool:
    return all(v is not None and math.isfinite(v) for v in values)


def diagnose_fit(train_error: float | None, val_error: float | None, reference_error: float | None,
                 history: dict[str, Any] | None, *, abs_tol: float = ABS_TOL, rel_tol: float = REL_TOL,
                 plateau_window: float = PLATEAU_WINDOW,
                 plateau_rel_tol: float = PLATEAU_REL_TOL) -> Diagnosis:
    """Diagnose one run from its final errors and its training history.

    Args:
        train_error: final error on the training set (lower is better).
        val_error: final error on the validation set.
        reference_error: the error a good model reaches (None: 0).
        history: the trainer's history dict (``status`` and ``iteration.loss`` are
            read), or None to judge from the errors alone.
        abs_tol, rel_tol: tolerance ``max(abs_tol, rel_tol · E_ref)`` for bias and variance.
        plateau_window: final fraction of iterations where the plateau is judged.
        plateau_rel_tol: relative loss improvement below which the run has stalled.

    Returns:
        A :class:`Diagnosis`; the rules are in the module docstring.

    Example:
        >>> diagnose_fit(0.03, 0.04, 0.02, None).kind
        'good fit'
    """
    ref = 0.0 if reference_error is None or not math.isfinite(reference_error) else float(reference_error)
    tol = tolerance(ref, abs_tol, rel_tol)
    history = history or {}
    losses = [float("nan") if v is None else float(v) for v in history.get("iteration", {}).get("loss", [])]
    improvement = plateau_improvement(losses, plateau_window)
    numbers: dict[str, float | None] = {
        "train_error": train_error, "val_error": val_error, "reference_error": ref,
        "avoidable_bias": train_error - ref if _finite(train_error) else None,
        "variance": val_error - train_error if _finite(train_error, val_error) else None,
        "tolerance": tol, "plateau_improvement": improvement,
    }
    if history.get("status") == "diverged" or not _finite(train_error, val_error) or \
            any(not math.isfinite(v) for v in losses):
        message = history.get("message") or "a loss or error is NaN or infinite"
        return Diagnosis("diverged", f"Training diverged ({message}). The step size is too large for the "
                         "curvature of this loss: lower the learning rate, or add warm-up or gradient clipping.",
                         numbers)
    bias, variance = numbers["avoidable_bias"], numbers["variance"]
    errors = f"train error {train_error:.4g}, validation error {val_error:.4g}, reference {ref:.4g}"
    if bias > tol and improvement is not None and improvement < plateau_rel_tol:
        return Diagnosis("stalled on a plateau", (
            f"The training loss improved by only {100 * improvement:.2g}% over the last "
            f"{100 * plateau_window:.0f}% of the iterations while the training error is still "
            f"{bias:.4g} above the reference ({errors}). The optimizer has stopped making progress: "
            "try a larger learning rate, momentum or an adaptive method, or a better initialization."), numbers)
    if bias > tol:
        extra = f" The variance ({variance:.4g}) is also high; fix the bias first." if variance > tol else ""
        return Diagnosis("underfitting (high bias)", (
            f"The model does not fit its own training data: avoidable bias {bias:.4g} > tolerance {tol:.4g} "
            f"({errors}). Train longer, use a bigger model or a better-tuned optimizer.{extra}"), numbers)
    if variance > tol:
        return Diagnosis("overfitting (high variance)", (
            f"The model fits the training data but generalizes worse: variance {variance:.4g} > tolerance "
            f"{tol:.4g} ({errors}). Use more data, regularization (L2, dropout) or early stopping."), numbers)
    return Diagnosis("good fit", (
        f"Training error is within {tol:.4g} of the reference and validation error within {tol:.4g} of "
        f"training error ({errors})."), numbers)
