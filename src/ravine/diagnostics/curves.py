"""The learning-curve diagnosis: what the loss and error curves say, and since when.

:func:`diagnose_curves` reads plain sequences (per-epoch train / validation loss
and metric, optionally the per-iteration minibatch loss) and returns a list of
:class:`Finding` — each with its kind, the epoch or step where it began, the
numbers behind it and one suggestion in plain words. :func:`diagnose_history`
is the thin adapter from a trainer history.

The rules and their thresholds (all keyword arguments of :func:`diagnose_curves`):

- **diverging** — the trainer stopped the run (status ``diverged``), a loss is
  NaN / infinite, or a loss exceeded ``spike_factor`` (5) × the first loss
  (per-iteration minibatch loss, or per-epoch train loss). A cross-entropy
  network starts near log(k); a well-chosen step never goes five times above
  that. ``began_at``: the first such step (or epoch).
- **oscillating** — the learning rate is too large: the per-epoch train loss
  (whole training split, eval mode: no sampling noise) keeps going *up*.
  With the increments Δ_t = L_t − L_{t−1} from epoch 1 on (the first epoch's
  drop from the initialization is left out), the fluctuation against the trend
  is ``F = Σ max(Δ_t, 0) / Σ |Δ_t|`` — 0 for a monotone descent, ½ for a loss
  that goes up as much as down. Oscillating when ``F ≥ oscillation_ratio``
  (0.25) with at least ``min_rises`` (2) rises each larger than ``rise_tol``
  (5%) of the loss. ``began_at``: the epoch of the first such rise. (A run
  that has converged still jiggles at SGD's noise floor — a few percent on
  diabetes-linreg — which is not the lr-too-large oscillation.)
- **plateau** — the train loss stopped improving while the training error is
  still high: the relative improvement over the last ``window`` (30%, at least 3
  epochs) of the epochs, ``(L_a − L_b)/L_a`` with L_a, L_b the window's first and
  last values, is below ``plateau_tol`` (1%). ``began_at``: the first epoch e
  from which the loss never falls more than ``plateau_tol`` × 2 below L_e.
- **too slow** — the learning rate is too small: a steady descent (F below
  ``oscillation_ratio``) that has not slowed down — its rate over the final
  window, (L_a − L_b)/(epochs in it), is at least ``slow_rate`` (0.3) × its mean
  rate since epoch 1, or it still improves by more than ``slow_tol`` (5%) over
  the final window (and by more than ``plateau_tol`` in any case) — and
  still far from done: the training error above the reference by more than the
  tolerance or, without a metric, the final train loss above
  ``slow_loss_ratio`` (0.1) × the initial one. (A converging run slows down:
  its final rate is a small fraction of its mean rate.)
- **underfitting** — avoidable bias: the final training error exceeds the
  reference error by more than ``max(abs_tol, rel_tol · E_ref)`` (0.02, 0.25),
  the course's tolerance, and the run is not "too slow" (then the cure is a
  larger step, not a larger model). Not judged when the reference is unknown
  (``reference_error=None``: user data).
- **overfitting** — only when the validation loss has *risen* from its minimum:
  for the last ``patience`` (3) epochs it stayed above ``min + max(2σ, 1% ·
  min)``, where σ is the validation loss's noise, estimated robustly from its
  epoch-to-epoch differences (σ = 1.4826 · MAD(Δ) / √2). ``began_at``: the epoch
  of the minimum (where early stopping would have stopped). The evidence also
  says whether the validation *metric* fell from its best by more than its own
  noise, or held (then the model only grew over-confident).
- **healthy** — none of the above.

Considered: a single threshold on the final errors (ravine's former
``diagnose_fit``) calls a run "overfitting" when train error 0 and validation
error 0.025 exceed a 0.02 tolerance although nothing got worse; the curves say
when something began, which is what a user can act on.

Example:
    >>> f = diagnose_curves([0, 1, 2, 3], [2.0, 0.5, 0.1, 0.02], [2.0, 0.6, 0.2, 0.1])
    >>> [x.kind for x in f]
    ['healthy']
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

#: Kinds in order of severity (the first finding is the headline).
KINDS = ("diverging", "oscillating", "plateau", "too slow", "underfitting", "overfitting", "healthy")

SPIKE_FACTOR = 5.0
OSCILLATION_RATIO = 0.25
MIN_RISES = 2
RISE_TOL = 0.05
WINDOW = 0.3
PLATEAU_TOL = 0.01
SLOW_TOL = 0.05
SLOW_RATE = 0.3
SLOW_LOSS_RATIO = 0.1
ABS_TOL = 0.02
REL_TOL = 0.25
PATIENCE = 3
NOISE_SIGMAS = 2.0
MIN_RISE_REL = 0.01


@dataclass
class Finding:
    """One thing the curves say.

    Attributes:
        kind: one of :data:`KINDS`.
        began_at: the epoch (or step, see ``unit``) where it began; None for "healthy".
        unit: ``"epoch"`` or ``"step"``.
        message: what was seen, in plain words with the numbers.
        suggestion: one plain sentence: what to change.
        evidence: the numbers behind it (plain floats / ints).
    """

    kind: str
    began_at: int | None
    unit: str
    message: str
    suggestion: str
    evidence: dict[str, float | int | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (for JSON)."""
        return asdict(self)


def _finite(v: Any) -> bool:
    return v is not None and isinstance(v, int | float) and math.isfinite(v)


def noise_sigma(values: Sequence[float]) -> float:
    """Robust noise of a curve from its successive differences: σ = 1.4826 · MAD(Δ) / √2.

    The MAD of the differences (about their median) ignores a smooth trend and
    a few jumps; for white noise of std σ the differences have std σ√2.

    Example:
        >>> round(noise_sigma([1.0, 1.0, 1.0]), 6)
        0.0
    """
    d = [b - a for a, b in zip(values[:-1], values[1:], strict=True)]
    if not d:
        return 0.0
    med = _median(d)
    return 1.4826 * _median([abs(x - med) for x in d]) / math.sqrt(2.0)


def _median(xs: Sequence[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def fluctuation(losses: Sequence[float], rise_tol: float = RISE_TOL) -> tuple[float, int, int | None]:
    """``(F, rises, first_rise_index)`` of a curve: F = Σ max(Δ, 0) / Σ |Δ| (0 = monotone descent).

    ``rises`` counts increments larger than ``rise_tol`` × the previous value;
    ``first_rise_index`` is the index (into ``losses``) of the first such rise.

    Example:
        >>> fluctuation([3.0, 2.0, 1.0])
        (0.0, 0, None)
        >>> fluctuation([2.0, 1.0, 2.0, 1.0])[:2]
        (0.3333333333333333, 1)
    """
    up = total = 0.0
    rises, first = 0, None
    for i in range(1, len(losses)):
        delta = losses[i] - losses[i - 1]
        total += abs(delta)
        if delta > 0:
            up += delta
            if delta > rise_tol * abs(losses[i - 1]):
                rises += 1
                first = i if first is None else first
    return (up / total if total > 0 else 0.0), rises, first


def _tolerance(reference: float, abs_tol: float, rel_tol: float) -> float:
    return max(abs_tol, rel_tol * abs(reference))


def _divergence(epochs: Sequence[int], train_loss: Sequence[float], iteration_loss: Sequence[float] | None,
                status: str, message: str, spike_factor: float) -> Finding | None:
    suggestion = ("Lower the learning rate (by 3-10×), or add warm-up or gradient clipping: "
                  "the step is too large for the curvature of this loss.")
    it = list(iteration_loss or [])
    bad = next((i for i, v in enumerate(it) if not _finite(v)), None)
    if bad is None and it and _finite(it[0]) and it[0] > 0:
        bad = next((i for i, v in enumerate(it) if v > spike_factor * it[0]), None)
    if bad is not None:
        value = it[bad]
        peak = max((v for v in it if _finite(v)), default=math.nan)
        return Finding("diverging", bad + 1, "step",
                       f"The minibatch loss reached {value:.4g} at step {bad + 1} "
                       f"({'not finite' if not _finite(value) else f'{value / it[0]:.3g}× the first loss {it[0]:.4g}'}).",
                       suggestion, {"step": bad + 1, "value": value if _finite(value) else None,
                                    "first_loss": it[0], "peak_loss": peak, "spike_factor": spike_factor})
    ep_bad = next((i for i, v in enumerate(train_loss) if not _finite(v)
                   or (_finite(train_loss[0]) and train_loss[0] > 0 and v > spike_factor * train_loss[0])), None)
    if ep_bad is not None or status == "diverged":
        at = epochs[ep_bad] if ep_bad is not None else (epochs[-1] if epochs else None)
        text = message or f"the train loss reached {train_loss[ep_bad]:.4g} at epoch {at}"
        return Finding("diverging", at, "epoch", f"Training diverged ({text}).", suggestion,
                       {"epoch": at, "spike_factor": spike_factor})
    return None


def _error(metric: float | None, higher_is_better: bool) -> float | None:
    if not _finite(metric):
        return None
    return 1.0 - metric if higher_is_better else metric  # type: ignore[operator]


def _overfitting(epochs: Sequence[int], val_loss: Sequence[float], val_metric: Sequence[float] | None,
                 higher_is_better: bool, patience: int, sigmas: float, min_rise_rel: float) -> Finding | None:
    pts = [(e, v) for e, v in zip(epochs, val_loss, strict=True) if _finite(v)]
    if len(pts) < patience + 2:
        return None
    values = [v for _, v in pts[1:]]  # epoch 0 (initialization) is no evidence of noise
    sigma = noise_sigma(values)
    i_min = min(range(len(pts)), key=lambda i: pts[i][1])
    e_min, v_min = pts[i_min]
    threshold = v_min + max(sigmas * sigma, min_rise_rel * abs(v_min))
    above = 0
    for _, v in reversed(pts):
        if v <= threshold:
            break
        above += 1
    if above < patience:
        return None
    last = pts[-1][1]
    evidence: dict[str, float | int | None] = {
        "min_epoch": e_min, "min_val_loss": v_min, "final_val_loss": last, "rise": last - v_min,
        "noise_sigma": sigma, "threshold": threshold, "epochs_above": above, "patience": patience}
    metric_note = ""
    if val_metric is not None:
        vm = [m for m in val_metric if _finite(m)]
        if len(vm) > 2:
            best = max(vm[1:]) if higher_is_better else min(vm[1:])
            drop = (best - vm[-1]) if higher_is_better else (vm[-1] - best)
            m_sigma = noise_sigma(vm[1:])
            evidence.update({"best_val_metric": best, "final_val_metric": vm[-1], "metric_drop": drop,
                             "metric_noise_sigma": m_sigma})
            evidence["metric_held"] = int(drop <= max(sigmas * m_sigma, 1e-12))
            if drop > max(sigmas * m_sigma, 1e-12):
                metric_note = f" The validation metric also fell from its best {best:.4g} to {vm[-1]:.4g}."
            else:
                metric_note = (f" The validation metric held ({vm[-1]:.4g}, best {best:.4g}): "
                               "the model grows over-confident more than it gets wrong.")
    return Finding("overfitting", e_min, "epoch",
                   f"The validation loss rose from its minimum {v_min:.4g} at epoch {e_min} to {last:.4g}, above "
                   f"the minimum plus its noise ({threshold:.4g}) for the last {above} epochs.{metric_note}",
                   f"Stop early at epoch {e_min} (keep the best validation checkpoint), or add regularization "
                   "(L2 weight decay, dropout) or more data.", evidence)


def diagnose_curves(epochs: Sequence[int], train_loss: Sequence[float], val_loss: Sequence[float],
                    train_metric: Sequence[float] | None = None, val_metric: Sequence[float] | None = None,
                    iteration_loss: Sequence[float] | None = None, higher_is_better: bool = True, *,
                    reference_error: float | None = None, status: str = "ok", message: str = "",
                    spike_factor: float = SPIKE_FACTOR, oscillation_ratio: float = OSCILLATION_RATIO,
                    min_rises: int = MIN_RISES, rise_tol: float = RISE_TOL, window: float = WINDOW,
                    plateau_tol: float = PLATEAU_TOL, slow_tol: float = SLOW_TOL, slow_rate: float = SLOW_RATE,
                    slow_loss_ratio: float = SLOW_LOSS_RATIO, abs_tol: float = ABS_TOL, rel_tol: float = REL_TOL,
                    patience: int = PATIENCE, noise_sigmas: float = NOISE_SIGMAS,
                    min_rise_rel: float = MIN_RISE_REL) -> list[Finding]:
    """Diagnose a run from its curves; the rules and thresholds are in the module docstring.

    Args:
        epochs: epoch numbers of the per-epoch rows (0 = before training).
        train_loss, val_loss: per-epoch losses on the whole train / validation split.
        train_metric, val_metric: per-epoch metrics (accuracy, rmse), or None.
        iteration_loss: per-iteration minibatch losses (before each step), or None.
        higher_is_better: the metric's direction (error = 1 − metric when True).
        reference_error: the error a good model reaches; None when unknown (no
            underfitting verdict then).
        status, message: the trainer's status (``"diverged"``) and its message.

    Returns:
        Findings, most severe first (order of :data:`KINDS`); ``[healthy]`` when
        nothing is wrong.

    Example:
        >>> f = diagnose_curves([0, 1, 2, 3, 4, 5], [2.0, 1.0, 1.6, 0.9, 1.5, 1.0], [2.0] * 6)
        >>> f[0].kind, f[0].began_at
        ('oscillating', 2)
    """
    epochs, train_loss, val_loss = list(epochs), list(train_loss), list(val_loss)
    findings: list[Finding] = []
    div = _divergence(epochs, train_loss, iteration_loss, status, message, spike_factor)
    if div is not None:
        findings.append(div)
    # Epoch 0 is the initialization; the curve's shape is judged from epoch 1 on.
    pts = [(e, v) for e, v in zip(epochs, train_loss, strict=True) if _finite(v)]
    shape = pts[1:] if len(pts) > 2 else pts
    losses = [v for _, v in shape]
    F, rises, first_rise = fluctuation(losses, rise_tol)
    if len(losses) >= 3 and F >= oscillation_ratio and rises >= min_rises:
        findings.append(Finding(
            "oscillating", shape[first_rise][0] if first_rise is not None else None, "epoch",
            f"The training loss goes up as well as down: {100 * F:.0f}% of its movement since epoch "
            f"{shape[0][0]} was upward ({rises} rises larger than {100 * rise_tol:.0f}%).",
            "Lower the learning rate (by about 3×), or use a schedule that decays it.",
            {"fluctuation": F, "rises": rises, "threshold": oscillation_ratio}))
    ref = reference_error if _finite(reference_error) else None
    tol = _tolerance(ref or 0.0, abs_tol, rel_tol)
    train_err = _error(train_metric[-1], higher_is_better) if train_metric else None
    bias = train_err - ref if (train_err is not None and ref is not None) else None
    high_bias = bias is not None and bias > tol
    n_win = max(3, int(round(window * len(losses))))
    improvement = None
    if len(losses) >= n_win and losses[-n_win] > 0:
        improvement = (losses[-n_win] - losses[-1]) / losses[-n_win]
    steady = F < oscillation_ratio
    far = high_bias if bias is not None else (
        bool(pts) and pts[0][1] > 0 and losses and losses[-1] > slow_loss_ratio * pts[0][1])
    ok_shape = div is None and steady
    evidence = {"train_error": train_err, "reference_error": ref, "avoidable_bias": bias, "tolerance": tol,
                "final_window_improvement": improvement, "window_epochs": n_win, "fluctuation": F}
    rate_ratio = None
    if improvement is not None and len(losses) >= 2 and losses[0] > losses[-1]:
        rate_end = (losses[-n_win] - losses[-1]) / (n_win - 1)
        rate_all = (losses[0] - losses[-1]) / (len(losses) - 1)
        rate_ratio = rate_end / rate_all
    evidence["final_rate_over_mean_rate"] = rate_ratio
    slow = bool(ok_shape and far and improvement is not None and improvement > plateau_tol
                and ((rate_ratio is not None and rate_ratio >= slow_rate) or improvement >= slow_tol))
    if slow:
        findings.append(Finding(
            "too slow", shape[0][0] if shape else None, "epoch",
            f"The training loss falls steadily but slowly: still {100 * improvement:.0f}% lower over the last "
            f"{n_win} epochs, and far from done (train loss {losses[-1]:.4g}"
            + (f", training error {train_err:.4g} vs reference {ref:.4g})." if bias is not None else
               f" vs {pts[0][1]:.4g} at the start)."),
            "Raise the learning rate (by 3-10×): the descent is steady, so a larger step is safe.", evidence))
    if div is None and improvement is not None and improvement < plateau_tol and high_bias:
        began = _plateau_start(pts, 2 * plateau_tol)
        findings.append(Finding(
            "plateau", began, "epoch",
            f"The training loss has not improved by more than {100 * 2 * plateau_tol:.0f}% since epoch {began} "
            f"while the training error {train_err:.4g} is still {bias:.4g} above the reference.",
            "If it flattened early the optimizer is stuck: raise the learning rate, add momentum, or check "
            "for dead units and the initialization; if it converged, the model is too small.", evidence))
    if high_bias and div is None and not slow:
        findings.append(Finding(
            "underfitting", None, "epoch",
            f"The model does not fit its own training data: training error {train_err:.4g} is {bias:.4g} above "
            f"the reference {ref:.4g} (tolerance {tol:.4g}).",
            "Train longer, use a bigger model, or tune the optimizer; fix this before regularizing.", evidence))
    if div is None:
        over = _overfitting(epochs, val_loss, val_metric, higher_is_better, patience, noise_sigmas, min_rise_rel)
        if over is not None:
            findings.append(over)
    if not findings:
        val_err = _error(val_metric[-1], higher_is_better) if val_metric else None
        findings.append(Finding(
            "healthy", None, "epoch",
            "The training loss falls steadily, the validation loss has not risen beyond its noise"
            + (f", and the training error {train_err:.4g} is at most {tol:.4g} above the reference error "
               f"{ref:.4g} (what a good model reaches on this problem)."
               if bias is not None else "."),
            "Nothing to change.", {**evidence, "val_error": val_err}))
    findings.sort(key=lambda f: KINDS.index(f.kind))
    return findings


def _plateau_start(pts: Sequence[tuple[int, float]], tol: float) -> int | None:
    """The first epoch e from which the loss never falls more than ``tol`` (relative) below L_e."""
    for i, (e, v) in enumerate(pts):
        if min(w for _, w in pts[i:]) >= v * (1.0 - tol):
            return e
    return pts[-1][0] if pts else None


def diagnose_history(history: Mapping[str, Any], reference_error: float | None = None) -> list[Finding]:
    """:func:`diagnose_curves` on a trainer history (``ravine.train.fit(...).history``).

    Example:
        >>> h = {"epoch": {"epoch": [0, 1, 2], "train_loss": [2.0, 1.0, 0.5], "val_loss": [2.0, 1.0, 0.6],
        ...      "train_metric": [0.1, 0.9, 0.99], "val_metric": [0.1, 0.9, 0.97]},
        ...      "iteration": {"loss": [2.0, 1.5, 1.0]}, "status": "ok", "higher_is_better": True}
        >>> [f.kind for f in diagnose_history(h, 0.02)]
        ['healthy']
    """
    ep = history["epoch"]
    get = getattr(ep, "get", None)

    def col(name: str) -> list[float] | None:
        value = get(name) if get is not None else getattr(ep, name, None)
        return [math.nan if v is None else float(v) for v in value] if value is not None else None

    iteration = history.get("iteration") or {}
    it_loss = iteration.get("loss") if hasattr(iteration, "get") else getattr(iteration, "loss", None)
    return diagnose_curves(
        [int(e) for e in (col("epoch") or [])], col("train_loss") or [], col("val_loss") or [],
        col("train_metric"), col("val_metric"),
        [math.nan if v is None else float(v) for v in it_loss] if it_loss is not None else None,
        bool(history.get("higher_is_better", True)), reference_error=reference_error,
        status=str(history.get("status", "ok")), message=str(history.get("message", "")))


def summary(findings: Sequence[Finding]) -> dict[str, Any]:
    """``{"kind", "explanation", "numbers", "findings"}``: the kinds (most severe first), all messages and
    suggestions, the first finding's evidence, and every finding as a dict.

    Example:
        >>> summary([Finding("healthy", None, "epoch", "fine", "Nothing to change.")])["kind"]
        'healthy'
    """
    kinds = [f.kind for f in findings]
    return {"kind": " + ".join(dict.fromkeys(kinds)) if kinds else "healthy",
            "explanation": " ".join(f"{f.message} {f.suggestion}" for f in findings),
            "numbers": dict(findings[0].evidence) if findings else {},
            "findings": [f.to_dict() for f in findings]}
