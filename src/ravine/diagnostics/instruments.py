"""Instruments on the trainer: what happens inside each layer while a network trains.

:class:`Instruments` is a :class:`ravine.train.Callback` that puts forward hooks
on every activation module and, every ``every`` iterations, records per layer:

- activation mean, std and histogram (the batch of that step);
- the fraction of **dead** units (ReLU family: output ≤ 0 for every sample
  seen since the previous report — a unit of a conv layer is a channel);
- the fraction of **saturated** outputs (sigmoid / tanh: within 1% of the
  ends of the range, i.e. sigmoid < 0.01 or > 0.99, |tanh| > 0.98);
- the RMS of the back-propagated gradient ∂L/∂h at the activation (a tensor
  hook, only on report steps);

and per Linear / Conv layer the weight norm ‖W‖, the gradient norm ‖∇W‖ and
the update-to-weight ratio ‖ΔW‖/‖W‖ of that step. All statistics stay on the
device as 0-d tensors and are copied to the host once, at the end of training
(no host sync per step). Between reports the only work is one ``amax``
reduction per ReLU layer and step (the dead-unit bookkeeping), combined at the report;
the other activations carry a hook only from the step before a report until it has
recorded, and the weights are copied (for ΔW) only on that step.

Considered: Cockpit (backpack-based; dormant since 2021, 1.5-64× overhead on
small networks) and TorchLens (forward statistics only); both lack the
plain-word findings and neither runs without extra heavy dependencies.

Example:
    >>> import torch
    >>> from ravine.train import fit
    >>> inst = Instruments(every=5)
    >>> _ = fit("digits-mlp", "sgd", epochs=1, callbacks=[inst], tensorboard=False)  # doctest: +SKIP
    >>> inst.result()["layers"][0]["dead"][:3]  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ravine.errors import ConfigError, check_int
from ravine.train import Callback, TrainState

#: activation classes the instruments recognize, by the course's name
ACTIVATION_KINDS: dict[type, str] = {nn.ReLU: "relu", nn.LeakyReLU: "leaky-relu", nn.PReLU: "prelu",
                                     nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.ELU: "elu", nn.GELU: "gelu"}
DEAD_KINDS = ("relu", "leaky-relu", "prelu")
#: saturation: output within 1% of the range's ends
SATURATION: dict[str, tuple[float, float]] = {"sigmoid": (0.01, 0.99), "tanh": (-0.98, 0.98)}
#: fixed histogram ranges of the bounded activations; the others use the first report's range
RANGES: dict[str, tuple[float, float]] = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}
PARAM_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d)
#: per-step unit maxima kept between reports before they are folded into one
PEAK_ROWS = 64


def _units(out: torch.Tensor) -> torch.Tensor:
    """Per-unit maximum over the batch (and the positions of a conv map): shape (units,)."""
    if out.dim() <= 2:
        return out.amax(dim=0) if out.dim() == 2 else out.reshape(1, -1).amax(dim=0)
    return out.amax(dim=_unit_dims(out))  # one reduction, no copy of the transposed map


def _unit_dims(out: torch.Tensor) -> tuple[int, ...]:
    """The dimensions a unit's maximum runs over: the batch, and the positions of a conv map."""
    return (0, *range(2, out.dim()))


def _std_mean(o: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.std_mean(o)`` (float32 ``o``), cheaper on the CPU.

    The CPU kernel of ``std_mean`` is 3-7x slower than ``std()`` alone on activation-sized
    tensors. ``std()`` returns the same bits; ``std_mean``'s mean is a float64 Welford mean
    rounded to float32, and so is a float64-accumulated mean (equal in all 400 random cases
    checked; they could differ only where the exact mean lies within ~1e-16 of a float32
    rounding boundary). Other devices keep the one fused kernel. The CPU mean comes back in
    float64: :meth:`Instruments.result` rounds all of a layer's means to float32 in one call.
    """
    if o.device.type == "cpu":
        return o.std(), o.mean(dtype=torch.float64)
    std, mean = torch.std_mean(o)
    return std, mean


def activation_modules(model: nn.Module) -> list[tuple[str, nn.Module, str]]:
    """``(name, module, kind)`` of every activation module of ``model``, in forward order.

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
        >>> [(n, k) for n, _, k in activation_modules(net)]
        [('1', 'tanh')]
    """
    return [(name, m, ACTIVATION_KINDS[type(m)]) for name, m in model.named_modules()
            if type(m) in ACTIVATION_KINDS]


def param_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every Linear / Conv layer, in definition order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, PARAM_TYPES)]


def saturated_fraction(out: torch.Tensor, kind: str) -> torch.Tensor:
    """Fraction of outputs within 1% of the ends of a sigmoid / tanh range (0 for others), as a tensor.

    Example:
        >>> float(saturated_fraction(torch.tensor([0.0, 0.995, 0.5, 0.02]), "sigmoid"))
        0.5
    """
    if kind not in SATURATION:
        return torch.zeros((), device=out.device)
    lo, hi = SATURATION[kind]
    return ((out < lo) | (out > hi)).float().mean()


@torch.no_grad()
def symmetry(model: nn.Module, rtol: float = 1e-5) -> list[dict[str, Any]]:
    """Per Linear / Conv layer: the fraction of units whose incoming weights (and bias) equal another unit's.

    Units i and j are twins when ‖w_i − w_j‖ ≤ rtol · max(‖w_i‖, ‖w_j‖, 1e-12), w the
    row of the weight matrix (flattened filter for a conv) with the bias appended.
    Twins receive the same input and produce the same output, so they get the same
    gradient and stay twins: the constant initialization's symmetry never breaks.

    Example:
        >>> lin = nn.Linear(3, 4); _ = nn.init.constant_(lin.weight, 0.5); _ = nn.init.zeros_(lin.bias)
        >>> symmetry(nn.Sequential(lin))[0]["twin_fraction"]
        1.0
    """
    out = []
    for name, layer in param_layers(model):
        w = layer.weight.detach().reshape(layer.weight.shape[0], -1).double()
        if layer.bias is not None:
            w = torch.cat([w, layer.bias.detach().double().reshape(-1, 1)], dim=1)
        norms = w.norm(dim=1)
        # Screen with one random projection: twins project within rtol·‖w‖·‖r‖ of each other, so they sit in
        # a run of small gaps of the sorted projections; only the rows of such runs need the pairwise test.
        r = torch.randn(w.shape[1], generator=torch.Generator().manual_seed(0), dtype=w.dtype).to(w.device)
        proj = w @ r
        order = proj.argsort()
        gap_tol = rtol * norms.max().clamp_min(1e-12) * r.norm()
        close = (proj[order][1:] - proj[order][:-1]) <= gap_tol
        suspects = torch.zeros(len(w), dtype=torch.bool, device=w.device)
        suspects[order[1:][close]] = True
        suspects[order[:-1][close]] = True
        has_twin = torch.zeros(len(w), dtype=torch.bool, device=w.device)
        distinct = len(w)
        if suspects.any():
            idx = suspects.nonzero().flatten()
            sub = w[idx]
            scale = torch.maximum(norms[idx][:, None], norms[idx][None, :]).clamp_min(1e-12)
            twins = torch.cdist(sub, sub) <= rtol * scale
            twins.fill_diagonal_(False)
            has_twin[idx] = twins.any(dim=1)
            distinct -= int(twins.triu().any(dim=0).sum())
        out.append({"layer": name, "units": len(w), "twin_fraction": float(has_twin.float().mean()),
                    "distinct_units": distinct})
    return out


@torch.no_grad()
def probe_activations(model: nn.Module, X: torch.Tensor, bins: int = 30) -> list[dict[str, Any]]:
    """One forward pass of ``X`` (eval mode); per activation layer: mean, std, saturated, dead, histogram.

    The course's (Glorot & Bengio's) view of an initialization: how the spread of
    the activations changes with depth.

    Example:
        >>> net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh())
        >>> [round(s["std"], 3) >= 0 for s in probe_activations(net, torch.randn(16, 4))]
        [True, True]
    """
    stats: list[dict[str, Any]] = []
    handles = []

    def hook(name: str, kind: str) -> Any:
        def fn(_m: nn.Module, _inp: Any, out: torch.Tensor) -> None:
            o = out.detach().float()
            lo, hi = RANGES.get(kind, (float(o.min()), float(o.max())))
            hi = hi if hi > lo else lo + 1.0
            dead = float((_units(o) <= 0).float().mean()) if kind in DEAD_KINDS else 0.0
            stats.append({"layer": name, "kind": kind, "mean": float(o.mean()), "std": float(o.std()),
                          "saturated": float(saturated_fraction(o, kind)), "dead": dead,
                          "hist": torch.histc(o, bins, lo, hi).tolist(), "range": [lo, hi]})
        return fn

    for name, module, kind in activation_modules(model):
        handles.append(module.register_forward_hook(hook(name, kind)))
    was_training = model.training
    model.eval()
    try:
        model(X)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return stats


class _ActRecord:
    """Device-side statistics of one activation layer."""

    def __init__(self, name: str, kind: str, depth: int) -> None:
        self.name, self.kind, self.depth = name, kind, depth
        self.peaks: list[torch.Tensor] = []  # per training forward since the last report: each unit's maximum
        self.handle: Any = None  # the forward hook of an activation without per-step bookkeeping, while armed
        self.recorded = False
        self.mean: list[torch.Tensor] = []
        self.std: list[torch.Tensor] = []
        self.hist: list[torch.Tensor] = []
        self.dead: list[torch.Tensor] = []  # per report: each unit's maximum since the previous report
        self.saturated: list[torch.Tensor] = []
        self.grad_rms: list[torch.Tensor] = []
        self.range: tuple[float, float] | None = RANGES.get(kind)

    def add_peak(self, out: torch.Tensor) -> None:
        """Each unit's maximum on this training forward (one reduction; the report combines them)."""
        self.peaks.append(_units(out.detach()))
        if len(self.peaks) >= PEAK_ROWS:  # a long interval: fold, so memory stays bounded
            self.peaks = [torch.stack(self.peaks).amax(dim=0)]

    def take_peak(self) -> torch.Tensor | None:
        """Each unit's maximum since the last report (None: no forward seen); starts the next interval.

        A unit is dead over the interval when this is ≤ 0; :meth:`Instruments.result` turns all
        reports' rows into fractions in one call.
        """
        if not self.peaks:
            return None
        peak = self.peaks[0] if len(self.peaks) == 1 else torch.stack(self.peaks).amax(dim=0)
        self.peaks = []
        return peak


class Instruments(Callback):
    """Per-layer statistics every ``every`` iterations (see the module docstring).

    Args:
        every: report interval in iterations (≥ 1).
        bins: histogram bins.
        probe: optional inputs for :func:`probe_activations` at the start and the
            end of training (the Glorot & Bengio histograms of a fixed batch).
        track_backward: also record ∂L/∂h at each activation on report steps.

    After training, :meth:`result` returns plain lists; :meth:`findings` the
    alerts in plain words.
    """

    def __init__(self, every: int = 20, bins: int = 30, probe: torch.Tensor | None = None,
                 track_backward: bool = True) -> None:
        self.every = check_int("every", every, 1, error=ConfigError)
        self.bins = check_int("bins", bins, 2, 1000, error=ConfigError)
        self.probe = probe
        self.track_backward = track_backward
        self.steps: list[int] = []
        self.epochs: list[float] = []
        self.acts: list[_ActRecord] = []
        self.params: list[dict[str, Any]] = []
        self.symmetry_start: list[dict[str, Any]] = []
        self.symmetry_end: list[dict[str, Any]] = []
        self.probe_start: list[dict[str, Any]] = []
        self.probe_end: list[dict[str, Any]] = []
        self._handles: list[Any] = []
        self._modules: list[nn.Module] = []
        self._armed = False
        self._before: list[torch.Tensor] = []
        self._norms: list[torch.Tensor] = []  # per report: (3, layers) = ‖W‖, ‖∇W‖, ‖ΔW‖
        self._result: dict[str, Any] | None = None

    # --- hooks -------------------------------------------------------------------------------------

    def _forward_hook(self, rec: _ActRecord) -> Any:
        if rec.kind in DEAD_KINDS:
            def tracking(module: nn.Module, _inp: Any, out: torch.Tensor) -> None:
                if not module.training:  # evaluation passes are not training statistics
                    return
                # each unit's maximum on this batch; a unit whose maxima since the last report are all ≤ 0 is dead
                rec.add_peak(out)
                if self._armed and not rec.recorded:
                    rec.recorded = True
                    self._record_activation(rec, out)
            return tracking

        def on_report(module: nn.Module, _inp: Any, out: torch.Tensor) -> None:
            # registered by _arm for the report step only: between reports this layer costs nothing
            if module.training and self._armed and not rec.recorded:
                rec.recorded = True
                rec.handle.remove()
                rec.handle = None
                self._record_activation(rec, out)
        return on_report

    def _record_activation(self, rec: _ActRecord, out: torch.Tensor) -> None:
        o = out.detach().float()
        std, mean = _std_mean(o)
        rec.mean.append(mean)
        rec.std.append(std)
        if rec.range is None:  # unbounded activations: the first report fixes the histogram range
            lo, hi = float(o.min()), float(o.max())  # one sync, once per layer
            rec.range = (lo, hi if hi > lo else lo + 1.0)
        rec.hist.append(torch.histc(o, self.bins, *rec.range))
        if rec.kind in SATURATION:  # the others have none: zeros are filled in by result()
            rec.saturated.append(saturated_fraction(o, rec.kind))
        peak = rec.take_peak() if rec.kind in DEAD_KINDS else None
        if peak is not None:
            rec.dead.append(peak)
        if self.track_backward and out.requires_grad:
            n = o.numel()
            out.register_hook(lambda g: rec.grad_rms.append(g.detach().float().norm() / math.sqrt(n)))

    # --- callback ----------------------------------------------------------------------------------

    def on_fit_start(self, state: TrainState) -> None:
        model = state.model
        modules = activation_modules(model)
        self.acts = [_ActRecord(name, kind, i) for i, (name, _, kind) in enumerate(modules)]
        self._modules = [module for _, module, _ in modules]
        for rec, module in zip(self.acts, self._modules, strict=True):
            if rec.kind in DEAD_KINDS:  # the dead-unit bookkeeping needs every training step
                self._handles.append(module.register_forward_hook(self._forward_hook(rec)))
        self.params = [{"layer": name, "module": m} for name, m in param_layers(model)]
        self._norms = []
        self.symmetry_start = symmetry(model)
        if self.probe is not None:
            self.probe_start = probe_activations(model, self.probe, self.bins)
        self._arm(state.iteration)

    def _arm(self, iteration: int) -> None:
        self._armed = (iteration + 1) % self.every == 0
        if self._armed:
            for rec, module in zip(self.acts, self._modules, strict=True):
                rec.recorded = False
                if rec.kind not in DEAD_KINDS and rec.handle is None:
                    rec.handle = module.register_forward_hook(self._forward_hook(rec))
            with torch.no_grad():
                weights = [p["module"].weight for p in self.params]
                if len(self._before) != len(weights):
                    self._before = [w.detach().clone() for w in weights]
                else:
                    torch._foreach_copy_(self._before, weights)

    def on_iteration_end(self, state: TrainState) -> None:
        if not self._armed and (state.iteration + 1) % self.every:
            return  # the common case: nothing to record, nothing to arm
        if self._armed:
            with torch.no_grad():
                # one foreach call for the three quantities of all layers, one stack (report steps only)
                weights = [p["module"].weight for p in self.params]
                grads = [w.grad if w.grad is not None else torch.zeros_like(w) for w in weights]
                torch._foreach_sub_(self._before, weights)  # before ← before − W = −ΔW
                norms = torch._foreach_norm([*weights, *grads, *self._before])
                self._norms.append(torch.stack(norms).reshape(3, len(weights)))
            self.steps.append(state.iteration)
            epochs = state.history["iteration"]["epoch"]
            self.epochs.append(float(epochs[-1]) if epochs else float(state.epoch))
        self._arm(state.iteration)

    def on_fit_end(self, state: TrainState) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
        for rec in self.acts:
            if rec.handle is not None:
                rec.handle.remove()
                rec.handle = None
        self.symmetry_end = symmetry(state.model)
        if self.probe is not None:
            self.probe_end = probe_activations(state.model, self.probe, self.bins)
        self._result = None

    # --- results -----------------------------------------------------------------------------------

    def result(self) -> dict[str, Any]:
        """Everything recorded, as plain lists (one host copy per series).

        ``{"every", "steps", "epochs", "layers": [{"layer", "kind", "mean", "std", "dead",
        "saturated", "grad_rms", "hist", "range"}], "params": [{"layer", "weight_norm",
        "grad_norm", "update_ratio"}], "symmetry_start", "symmetry_end", "probe_start", "probe_end"}``.
        """
        if self._result is not None:
            return self._result

        def host(xs: list[torch.Tensor]) -> list[Any]:
            return torch.stack(xs).cpu().tolist() if xs else []

        def means(xs: list[torch.Tensor]) -> list[float]:  # float64 on the CPU (see _std_mean): round once
            return torch.stack(xs).float().cpu().tolist() if xs else []

        def dead(peaks: list[torch.Tensor]) -> list[float]:  # per report: the fraction of units never > 0
            return (torch.stack(peaks) <= 0).float().mean(dim=1).cpu().tolist() if peaks else []

        n = len(self.steps)
        layers = [{"layer": r.name, "kind": r.kind, "mean": means(r.mean)[:n], "std": host(r.std)[:n],
                   "dead": dead(r.dead)[:n],
                   "saturated": host(r.saturated)[:n] if r.kind in SATURATION else [0.0] * len(r.mean[:n]),
                   "grad_rms": host(r.grad_rms)[:n], "hist": host(r.hist)[:n],
                   "range": list(r.range) if r.range is not None else None} for r in self.acts]
        norms = torch.stack(self._norms).cpu().tolist() if self._norms else []  # [report][quantity][layer]
        params = []
        for i, p in enumerate(self.params):
            w = [r[0][i] for r in norms]
            params.append({"layer": p["layer"], "size": p["module"].weight.numel(), "weight_norm": w,
                           "grad_norm": [r[1][i] for r in norms],
                           "update_ratio": [r[2][i] / max(wi, 1e-30) for r, wi in zip(norms, w, strict=True)]})
        self._result = {"every": self.every, "steps": list(self.steps), "epochs": list(self.epochs),
                        "layers": layers, "params": params, "symmetry_start": self.symmetry_start,
                        "symmetry_end": self.symmetry_end, "probe_start": self.probe_start,
                        "probe_end": self.probe_end}
        return self._result


def _fmt_pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def instrument_findings(result: dict[str, Any], *, dead_tol: float = 0.25, saturated_tol: float = 0.25,
                        symmetry_tol: float = 0.5, vanishing: float = 1e-2, exploding: float = 1e2,
                        shrink: float = 0.1, last: int = 3) -> list[dict[str, Any]]:
    """Alerts in plain words from :meth:`Instruments.result`.

    Thresholds: a layer whose mean dead fraction over the last ``last`` reports is
    ≥ ``dead_tol`` (25%); mean saturated fraction ≥ ``saturated_tol`` (25%); a hidden
    layer (not the output layer) whose twin fraction at the end is ≥ ``symmetry_tol``
    (50%); the ratio of the first to the last layer's RMS weight gradient
    (‖∇W‖/√size) below ``vanishing`` (10⁻²) or above ``exploding`` (10²); the last
    hidden activation's std below ``shrink`` (0.1) × the first's.

    Each alert is ``{"kind", "layer", "began_at", "unit", "message", "suggestion", "evidence"}``.
    """
    out: list[dict[str, Any]] = []
    epochs = result["epochs"]

    def began(series: list[float], tol: float) -> int | None:
        # the first report from which the series stays above tol
        idx = None
        for i in range(len(series) - 1, -1, -1):
            if series[i] < tol:
                break
            idx = i
        return int(math.floor(epochs[idx])) if idx is not None and idx < len(epochs) else None

    for depth, layer in enumerate(result["layers"]):
        dead = layer["dead"]
        if dead and sum(dead[-last:]) / len(dead[-last:]) >= dead_tol:
            frac = sum(dead[-last:]) / len(dead[-last:])
            ep = began(dead, dead_tol)
            out.append({"kind": "dead units", "layer": layer["layer"], "began_at": ep, "unit": "epoch",
                        "message": f"{_fmt_pct(frac)} of the {layer['kind']} units of activation layer {depth + 1} "
                                   f"({layer['layer']}) are dead (never positive between reports) since epoch {ep}.",
                        "suggestion": "Lower the learning rate, start biases at 0 (not negative), use He "
                                      "initialization, or switch to leaky-relu.",
                        "evidence": {"dead_fraction": frac, "threshold": dead_tol}})
        sat = layer["saturated"]
        if sat and layer["kind"] in SATURATION and sum(sat[-last:]) / len(sat[-last:]) >= saturated_tol:
            frac = sum(sat[-last:]) / len(sat[-last:])
            ep = began(sat, saturated_tol)
            out.append({"kind": "saturated units", "layer": layer["layer"], "began_at": ep, "unit": "epoch",
                        "message": f"{_fmt_pct(frac)} of the {layer['kind']} outputs of activation layer {depth + 1} "
                                   f"({layer['layer']}) are within 1% of their range's ends (since epoch {ep}): "
                                   "their gradients vanish.",
                        "suggestion": "Use a smaller (Xavier) initialization, standardize the inputs, or switch to "
                                      "relu.", "evidence": {"saturated_fraction": frac, "threshold": saturated_tol}})
    hidden = result["symmetry_end"][:-1]
    for s in hidden:
        if s["units"] > 1 and s["twin_fraction"] >= symmetry_tol:
            out.append({"kind": "symmetry", "layer": s["layer"], "began_at": 0, "unit": "epoch",
                        "message": f"{_fmt_pct(s['twin_fraction'])} of the {s['units']} units of layer {s['layer']} "
                                   f"have identical incoming weights ({s['distinct_units']} distinct) after "
                                   "training: they compute the same function and never become different.",
                        "suggestion": "Initialize the weights randomly (xavier-uniform, xavier-normal or he), "
                                      "never with a constant.",
                        "evidence": {"twin_fraction": s["twin_fraction"], "distinct_units": s["distinct_units"],
                                     "threshold": symmetry_tol}})
    params = result["params"]
    if len(params) >= 2 and params[0]["grad_norm"] and params[-1]["grad_norm"]:
        # RMS per weight, so that layers of different sizes compare
        sizes = [p.get("size") for p in params]
        first, lastp = params[0], params[-1]
        g_first = _tail_mean(first["grad_norm"], last) / math.sqrt(sizes[0] or 1)
        g_last = _tail_mean(lastp["grad_norm"], last) / math.sqrt(sizes[-1] or 1)
        if g_last > 0 and math.isfinite(g_first):
            ratio = g_first / g_last
            if ratio < vanishing or ratio > exploding:
                kind = "vanishing gradients" if ratio < vanishing else "exploding gradients"
                out.append({"kind": kind, "layer": first["layer"], "began_at": None, "unit": "epoch",
                            "message": f"The first layer's RMS gradient is {ratio:.3g}× the last layer's: "
                                       f"the gradient {'shrinks' if ratio < vanishing else 'grows'} with depth.",
                            "suggestion": "Use relu with He or tanh with Xavier initialization, add batch "
                                          "normalization, or use fewer layers.",
                            "evidence": {"ratio": ratio, "vanishing": vanishing, "exploding": exploding}})
    stds = [layer["std"] for layer in result["layers"] if layer["std"]]
    if len(stds) >= 2:
        s_first, s_last = _tail_mean(stds[0], last), _tail_mean(stds[-1], last)
        if s_first > 0 and s_last / s_first < shrink:
            out.append({"kind": "shrinking activations", "layer": result["layers"][-1]["layer"], "began_at": None,
                        "unit": "epoch",
                        "message": f"The activations' std falls from {s_first:.3g} in the first hidden layer to "
                                   f"{s_last:.3g} in the last: the signal fades with depth.",
                        "suggestion": "Use Xavier (tanh, sigmoid) or He (relu) initialization.",
                        "evidence": {"std_first": s_first, "std_last": s_last, "threshold": shrink}})
    return out


def _tail_mean(xs: Sequence[float], k: int) -> float:
    tail = [x for x in xs[-k:] if math.isfinite(x)]
    return sum(tail) / len(tail) if tail else math.nan
