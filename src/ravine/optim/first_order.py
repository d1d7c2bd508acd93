"""The course's first-order update rules as ``torch.optim.Optimizer`` classes.

g is the minibatch gradient, all operations are elementwise; ε = ``lr``,
α = ``momentum``, ρ = ``rho``, (ρ1, ρ2) = ``betas``, δ = ``eps``.

| class | registry name | rule | kernel |
|---|---|---|---|
| :class:`SGD` | ``sgd`` / ``gd`` | θ ← θ − ε g | ``torch.optim.SGD``, fused |
| :class:`Momentum` | ``momentum`` | v ← α v − ε g ; θ ← θ + v | own; CPU: fused SGD kernel |
| :class:`Nesterov` | ``nesterov`` | v ← α v − ε ∇L(θ + α v) ; θ ← θ + v | own; CPU: fused SGD + 1 op |
| :class:`AdaGrad` | ``adagrad`` | r ← r + g⊙g ; θ ← θ − ε g / (δ + √r) | ``torch.optim.Adagrad``, fused |
| :class:`RMSProp` | ``rmsprop`` | r ← ρ r + (1−ρ) g⊙g ; θ ← θ − ε g / √(δ + r) | own; CPU: fused Adam kernel |
| :class:`RMSPropEpsOutside` | ``rmsprop``, ``eps_inside_sqrt=False`` | … θ ← θ − ε g / (√r + δ) | ``torch.optim.RMSprop``, foreach |
| :class:`Adam` | ``adam`` | s, r moments ; θ ← θ − ε ŝ / (√r̂ + δ) | ``torch.optim.Adam``, fused |

Why some rules delegate and others don't: ``torch.optim`` computes exactly the
course's SGD, AdaGrad (torch's ``√r + eps`` is the course's ``δ + √r``),
Adam (``eps`` added after the bias correction, as in the course) and RMSProp with
δ outside the root, *including under a changing ε*, so ravine subclasses those
and uses torch's fused CPU/GPU kernel where torch has one (foreach otherwise).
torch's momentum SGD keeps ``buf ← α buf + g`` and steps ``θ ← θ − ε buf``,
which departs from ``v ← α v − ε g`` as soon as ε changes, and torch has no
RMSProp with δ inside the root; those three are written here. On the CPU they
still run torch's fused kernels, given arguments under which the kernel computes
exactly the course's rule (the velocity itself as SGD's buffer with
``1 − dampening = −ε``; Adam with ρ1 = 0, no bias correction and δ folded into
the stored average — see each class), falling back to ``torch._foreach_*`` ops
(on the CPU in cache-sized chunks, see :func:`cache_chunks`) on other devices
and where those arguments would not be exact. :class:`Nesterov` needs one
gradient per step: its parameter holds the look-ahead point θ + α v (see the
class docstring).

Regularization, on every rule: ``weight_decay`` λ adds λθ to g (L2), ``l1``
λ₁ adds λ₁ sign(θ) (L1, subgradient 0 at 0). For the subclasses of torch's
classes L2 is torch's own ``weight_decay``; L1 is added by swapping each
``p.grad`` for ``g + λ₁ sign(θ)`` during the step and restoring the caller's
gradient afterwards, so the fused kernel still runs.

Every hyperparameter is checked when the optimizer or a param group is built:
a bad value raises :class:`~ravine.errors.HyperparameterError` naming the field
and the allowed range. Hyperparameters are read from the param group at every
step, so ``torch.optim.lr_scheduler`` and ravine's momentum schedules work.

Example:
    >>> import torch
    >>> w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    >>> opt = Momentum([w], lr=0.1, momentum=0.9)
    >>> (w ** 2).sum().backward()
    >>> _ = opt.step()
    >>> opt.state[w]["velocity"]
    tensor([-0.2000,  0.4000])
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.optim.optimizer import _get_fused_kernels_supported_devices

from ravine.errors import CheckpointError, DataError, HyperparameterError, check_range
from ravine.optim.registry import OptimizerInfo

Closure = Callable[[], Any] | None
Params = Iterable[torch.Tensor] | Iterable[dict[str, Any]]

# --------------------------------------------------------------------------- checks


def _check_betas(value: Any) -> None:
    try:
        pair = tuple(value)
    except TypeError:
        pair = ()
    if len(pair) != 2:
        raise HyperparameterError(f"Invalid betas: {value!r} (allowed: a pair (rho1, rho2), 0 <= each < 1)")
    for i, beta in enumerate(pair):
        check_range(f"betas[{i}]", beta, 0.0, 1.0, high_inclusive=False)


def _check_bool(field: str) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if not isinstance(value, bool):
            raise HyperparameterError(f"Invalid {field}: {value!r} (allowed: True or False)")

    return check


_CHECKS: dict[str, Callable[[Any], Any]] = {
    "lr": lambda v: check_range("lr", v, 0.0),
    "momentum": lambda v: check_range("momentum", v, 0.0, 1.0, high_inclusive=False),
    "rho": lambda v: check_range("rho", v, 0.0, 1.0, high_inclusive=False),
    "betas": _check_betas,
    "eps": lambda v: check_range("eps", v, 0.0, low_inclusive=False),
    "weight_decay": lambda v: check_range("weight_decay", v, 0.0),
    "l1": lambda v: check_range("l1", v, 0.0),
    "eps_inside_sqrt": _check_bool("eps_inside_sqrt"),
}


def check_hyperparameters(group: dict[str, Any], checks: dict[str, Callable[[Any], Any]] = _CHECKS) -> None:
    """Check every known hyperparameter in ``group``; keys without a check pass.

    Example:
        >>> check_hyperparameters({"lr": -1.0})
        Traceback (most recent call last):
        ...
        ravine.errors.HyperparameterError: Invalid lr: -1.0 (allowed: 0 <= lr)
    """
    for key, check in checks.items():
        if key in group:
            check(group[key])


def split_params(params: Params) -> tuple[list[Any], list[torch.Tensor]]:
    """Materialize ``params`` (tensors, named tensors or group dicts) once.

    Returns the list to hand to ``torch.optim.Optimizer`` and the flat list of
    tensors in it (used to choose the kernel before the optimizer exists).

    Example:
        >>> a, b = torch.zeros(2), torch.zeros(3)
        >>> items, tensors = split_params([{"params": a}, {"params": iter([b]), "lr": 0.1}])
        >>> [t.numel() for t in tensors], items[1]["params"][0] is b
        ([2, 3], True)
    """
    if isinstance(params, torch.Tensor):
        raise HyperparameterError("Invalid params: a single tensor (allowed: an iterable of tensors or dicts)")
    items = list(params)
    if not items:
        raise HyperparameterError("Invalid params: empty (allowed: at least one tensor)")
    tensors: list[torch.Tensor] = []
    for item in items:
        members = [item]
        if isinstance(item, dict):
            group_params = item.get("params", [])
            item["params"] = [group_params] if isinstance(group_params, torch.Tensor) else list(group_params)
            members = item["params"]
        tensors += [m[1] if isinstance(m, tuple) else m for m in members]
    return items, tensors


# torch classes whose fused kernel skips devices that torch's generic list names: torch.optim.Adagrad's
# fused kernel is CPU-only (it checks ``cuda_unsupported=True``), so picking it on CUDA would crash the step.
FUSED_DEVICES_MISSING: dict[type, tuple[str, ...]] = {torch.optim.Adagrad: ("cuda",)}


def kernel_flags(tensors: list[torch.Tensor], fused: bool | None, has_fused: bool,
                 foreach: bool | None = None, missing: tuple[str, ...] = (), who: str = "") -> dict[str, bool]:
    """``{"fused": True}`` where torch's fused kernel can run on ``tensors``, else ``{"foreach": True}``.

    ``fused=None`` picks automatically; an explicit True/False is respected, and so is an
    explicit ``foreach`` (``foreach=False``: torch's per-tensor loop). ``missing``: device types
    this kernel lacks although torch's generic list names them; an explicit ``fused=True`` there
    is refused by name.

    Example:
        >>> kernel_flags([torch.zeros(2)], fused=None, has_fused=True)
        {'fused': True}
        >>> kernel_flags([torch.zeros(2, dtype=torch.complex64)], fused=None, has_fused=True)
        {'foreach': True}
    """
    if fused and foreach:
        raise HyperparameterError("Invalid fused, foreach: both True (allowed: at most one of them True)")
    if foreach is not None:
        return {"foreach": foreach, "fused": False} if fused is not None else {"foreach": foreach}
    devices = [d for d in _get_fused_kernels_supported_devices() if d not in missing]
    if fused is None:
        fused = has_fused and all(
            t.is_floating_point() and not t.is_sparse and t.device.type in devices for t in tensors
        )
    elif fused and missing:
        off = sorted({t.device.type for t in tensors if t.device.type in missing})
        if off:
            raise HyperparameterError(f"Invalid fused for {who or 'this optimizer'} on {', '.join(off)}: True "
                                      f"(allowed: False or None; torch's fused kernel runs on {', '.join(devices)})")
    return {"fused": True} if fused else {"foreach": True}


# The flags torch.optim's classes take besides the hyperparameters. Every ravine class takes all
# five, and ``create`` forwards them; each is honoured or refused with a HyperparameterError
# naming it (see ``torch_flags`` and ``_ForeachRule``).
FLAGS = ("maximize", "foreach", "fused", "capturable", "differentiable")


def check_flags(who: str, flags: dict[str, Any]) -> None:
    """Type checks shared by every class: ``maximize``/``capturable``/``differentiable`` bool,
    ``foreach``/``fused`` bool or None.

    Example:
        >>> check_flags("sgd", {"maximize": "yes"})
        Traceback (most recent call last):
        ...
        ravine.errors.HyperparameterError: Invalid maximize for sgd: 'yes' (allowed: True or False)
    """
    for name, value in flags.items():
        nullable = name in ("foreach", "fused")
        if not (isinstance(value, bool) or (nullable and value is None)):
            allowed = "True, False or None" if nullable else "True or False"
            raise HyperparameterError(f"Invalid {name} for {who}: {value!r} (allowed: {allowed})")


def torch_flags(torch_class: type[torch.optim.Optimizer], who: str, tensors: list[torch.Tensor], *,
                maximize: bool, foreach: bool | None, fused: bool | None, capturable: bool,
                differentiable: bool) -> dict[str, Any]:
    """The keyword flags to hand to ``torch_class.__init__``: checked, and refused by name where torch lacks them.

    Example:
        >>> torch_flags(torch.optim.SGD, "sgd", [torch.zeros(2)], maximize=True, foreach=None, fused=None,
        ...             capturable=False, differentiable=False)
        {'maximize': True, 'fused': True}
    """
    check_flags(who, {"maximize": maximize, "foreach": foreach, "fused": fused, "capturable": capturable,
                      "differentiable": differentiable})
    accepted = inspect.signature(torch_class.__init__).parameters
    out: dict[str, Any] = {"maximize": maximize}
    if capturable:
        if "capturable" not in accepted:
            raise HyperparameterError(f"Invalid capturable for {who}: True (allowed: False; torch.optim."
                                      f"{torch_class.__name__} has no capturable mode)")
        out["capturable"] = True
    if differentiable:
        if fused:
            raise HyperparameterError(f"Invalid fused for {who} with differentiable=True: True (allowed: False "
                                      "or None; torch's fused kernels are not differentiable)")
        out["differentiable"] = True
        fused = False
        foreach = False if foreach is None else foreach
    if capturable and fused is None and foreach is None:
        foreach = True  # torch's capturable mode runs on the foreach path; its fused kernel wants CUDA
    out.update(kernel_flags(tensors, fused, has_fused="fused" in accepted, foreach=foreach,
                            missing=FUSED_DEVICES_MISSING.get(torch_class, ()), who=who))
    return out


# --------------------------------------------------------------------------- shared machinery


class _CheckedGroups:
    """Mixin: every param group is checked when it is added (also after construction)."""

    _checks: dict[str, Callable[[Any], Any]] = _CHECKS
    _extra_defaults: dict[str, Any] = {}

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        known = {**self.defaults, **self._extra_defaults}  # type: ignore[attr-defined]
        unknown = sorted(set(param_group) - set(known) - {"params", "param_names", "initial_lr"})
        if unknown:  # a typo would otherwise be kept in the group and silently ignored
            raise HyperparameterError(f"unknown param-group key {unknown[0]!r} for {type(self).__name__}; "
                                      f"allowed: {', '.join(sorted(known))}")
        if "eps_inside_sqrt" in param_group and param_group["eps_inside_sqrt"] != known.get("eps_inside_sqrt"):
            raise HyperparameterError("Invalid eps_inside_sqrt in a param group (allowed: the optimizer's own "
                                      "value; choose it with rmsprop(..., eps_inside_sqrt=...))")
        for key, value in self._extra_defaults.items():
            param_group.setdefault(key, value)
        merged = {**self.defaults, **param_group}  # type: ignore[attr-defined]
        check_hyperparameters(merged, self._checks)
        self._check_group(merged)
        super().add_param_group(param_group)  # type: ignore[misc]

    def _check_group(self, group: dict[str, Any]) -> None:
        """Checks that span several keys (e.g. c1 < c2); none by default."""


def regularized(params: list[torch.Tensor], grads: list[torch.Tensor], group: dict[str, Any]) -> list[torch.Tensor]:
    """g + λ θ + λ₁ sign(θ) for a list of tensors (new tensors; the inputs are left alone).

    Example:
        >>> p = [torch.tensor([2.0, -1.0])]
        >>> regularized(p, [torch.zeros(2)], {"weight_decay": 0.5, "l1": 0.1})
        [tensor([ 1.1000, -0.6000])]
    """
    weight_decay, l1 = group.get("weight_decay", 0.0), group.get("l1", 0.0)
    if weight_decay:
        grads = torch._foreach_add(grads, params, alpha=weight_decay)
    if l1:
        signs = torch._foreach_sign(params)
        if weight_decay:
            torch._foreach_add_(grads, signs, alpha=l1)
        else:
            grads = torch._foreach_add(grads, signs, alpha=l1)
    return list(grads)


@contextmanager
def l1_added_to_grads(param_groups: list[dict[str, Any]], grad_scale: float = 1.0) -> Iterator[None]:
    """Within the block ``p.grad`` is ``g + λ₁ sign(θ)`` (times ``grad_scale``, for gradients that
    torch.amp's GradScaler has scaled); the caller's tensors are restored after.

    Example:
        >>> w = torch.nn.Parameter(torch.tensor([2.0, -1.0])); w.grad = torch.zeros(2)
        >>> with l1_added_to_grads([{"params": [w], "l1": 0.5}]):
        ...     w.grad
        tensor([ 0.5000, -0.5000])
        >>> w.grad
        tensor([0., 0.])
    """
    swapped: list[tuple[torch.Tensor, torch.Tensor]] = []
    with torch.no_grad():
        for group in param_groups:
            if not group.get("l1", 0.0):
                continue
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            # torch negates the whole gradient when maximizing: −(g − λ₁ sign θ) still shrinks |θ|
            sign = -1.0 if group.get("maximize", False) else 1.0
            new = regularized(params, grads, {"l1": sign * group["l1"] * grad_scale})
            for p, g, n in zip(params, grads, new, strict=True):
                swapped.append((p, g))
                p.grad = n
    try:
        yield
    finally:
        for p, g in swapped:
            p.grad = g


def _unhooked(step: Callable[..., Any]) -> Callable[..., Any]:
    # torch wraps a class's ``step`` with its hook runner the first time an
    # instance is built; calling the wrapped parent step from our own (hooked)
    # step would run the step hooks twice.
    return step.__wrapped__ if getattr(step, "hooked", False) else step  # type: ignore[attr-defined]


class _TorchRule(_CheckedGroups):
    """Mixin for subclasses of a ``torch.optim`` class: adds ``l1`` around torch's own step."""

    _torch_class: type[torch.optim.Optimizer]

    @torch.no_grad()
    def step(self, closure: Closure = None) -> Any:
        """Take one step; ``closure`` (optional) re-evaluates the loss with ``backward``."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._sync_group_keys()
        for group in self.param_groups:
            if any(p.grad is not None and p.grad.is_sparse for p in group["params"]):
                raise DataError(f"Invalid gradient: sparse (allowed: dense gradients for {type(self).__name__}; "
                                "use torch.optim.SparseAdam or nn.Embedding(sparse=False))")
        # under torch.amp.GradScaler a fused kernel gets scaled gradients and unscales them
        # itself (``grad_scale`` is set on the optimizer), so the L1 term is scaled to match
        scale = getattr(self, "grad_scale", None)
        scale = 1.0 if scale is None else float(scale)
        with l1_added_to_grads(self.param_groups, scale):  # type: ignore[attr-defined]
            _unhooked(self._torch_class.step)(self)
        return loss

    def _sync_group_keys(self) -> None:
        """Copy ravine's hyperparameter names onto torch's where they differ."""


# Elements per call on the CPU: an update made of several passes (foreach ops, or
# a fused kernel plus one op) then runs them over tensors that stay in cache instead
# of streaming every tensor through memory once per pass (measured ~1.5x faster for
# foreach RMSProp on 10 M parameters; smaller chunks lose more to per-call overhead).
CPU_CHUNK = 1 << 18


def cache_chunks(lists: list[list[torch.Tensor]], size: int | None = None) -> Iterator[list[list[torch.Tensor]]]:
    """Cut parallel tensor lists into calls of about ``size`` elements.

    Consecutive tensors of at most ``size`` elements are batched together; a
    longer contiguous tensor is split into flat views of ``size`` (in-place ops
    on them write through), one call each. The arithmetic per element is
    unchanged. (Written for speed: it runs at every step, on every tensor.)

    Example:
        >>> xs = [torch.zeros(2), torch.zeros(2), torch.zeros(5), torch.zeros(3)]
        >>> [[t.numel() for t in chunk[0]] for chunk in cache_chunks([xs], size=4)]
        [[2, 2], [4], [1], [3]]
    """
    size = size or CPU_CHUNK
    start, total = 0, 0
    for i, tensor in enumerate(lists[0]):
        n = tensor.numel()
        if n > size and all(lst[i].is_contiguous() for lst in lists):
            if i > start:
                yield [lst[start:i] for lst in lists]
            pieces = [lst[i].view(-1).split(size) for lst in lists]
            for k in range(len(pieces[0])):
                yield [[parts[k]] for parts in pieces]
            start, total = i + 1, 0
            continue
        if total and total + n > size:
            yield [lst[start:i] for lst in lists]
            start, total = i, 0
        total += n
    if start < len(lists[0]):
        yield [lst[start:] for lst in lists]


_HAS_FUSED_KERNELS = hasattr(torch, "_fused_sgd_") and hasattr(torch, "_fused_adam_")


def fused_cpu_tensors(lists: list[list[torch.Tensor]]) -> bool:
    """True when torch's fused CPU kernels can run elementwise on these parallel lists.

    They walk each tensor's memory as one flat array, so every tensor must be a
    contiguous float32 / float64 CPU tensor (the lists come from one device and dtype).

    Example:
        >>> fused_cpu_tensors([[torch.zeros(2)], [torch.zeros(2)]])
        True
        >>> fused_cpu_tensors([[torch.zeros(2, 2).t()], [torch.zeros(2, 2)]])
        False
    """
    first = lists[0][0]
    # The kernels are torch-internal ops: where a torch release lacks them, the foreach path runs.
    return (_HAS_FUSED_KERNELS and first.device.type == "cpu" and first.dtype in (torch.float32, torch.float64)
            and all(t.is_contiguous() for row in lists for t in row))


def exact_dampening(lr: float, dtype: torch.dtype) -> float | None:
    """The ``dampening`` d that makes torch's fused SGD kernel scale g by exactly −ε, or None.

    The kernel computes ``buf ← momentum · buf + (1 − d) · g`` with ``1 − d``
    evaluated in double and then rounded to ``dtype``; the course's v ← α v − ε g
    needs that coefficient to be −ε as ``dtype`` holds it (what the foreach ops
    use). d = 1 + ε is exact when ε has no bits below 2⁻⁵²: always for a float32
    ε ≥ 2⁻²⁹, for float64 only for some ε (0.5, 0.03125, ...).

    Example:
        >>> exact_dampening(1e-3, torch.float32) - 1.0 == torch.tensor(1e-3).item()
        True
        >>> exact_dampening(1e-3, torch.float64) is None, exact_dampening(0.25, torch.float64)
        (True, 1.25)
    """
    coefficient = torch.tensor(-lr, dtype=dtype).item()
    dampening = 1.0 - coefficient
    return dampening if 1.0 - dampening == coefficient else None


class _ForeachRule(_CheckedGroups, torch.optim.Optimizer):
    """Base of the rules written here: gathers (θ, g, state) per device and dtype, then ``_step_tensors``.

    Subclasses set ``_state_keys`` (per-parameter tensors, zero at start) and
    write ``_update(group, key, params, grads, *state)`` with foreach ops (called
    on cache-sized chunks, with g already regularized); they may override
    ``_step_tensors`` to run a fused kernel on a whole device list instead.
    ``_partition`` may split a group's parameters by a key passed to both.
    """

    _state_keys: tuple[str, ...] = ()
    _checks = {**_CHECKS, "fused": _check_bool("fused"), "maximize": _check_bool("maximize")}
    registry_name = "?"
    # why a torch.optim state dict cannot be loaded here (state key of the torch class -> reason)
    _foreign_state: dict[str, str] = {}

    @classmethod
    def _flag_defaults(cls, *, maximize: bool, foreach: bool | None, fused: bool | None, capturable: bool,
                       differentiable: bool) -> dict[str, Any]:
        """The group keys for the five torch flags: ``maximize`` honoured, ``fused``/``foreach`` choose the
        kernel, ``capturable``/``differentiable`` refused by name (the update runs in place under no_grad
        and reads hyperparameters as Python numbers)."""
        who = cls.registry_name
        check_flags(who, {"maximize": maximize, "foreach": foreach, "fused": fused, "capturable": capturable,
                          "differentiable": differentiable})
        if capturable:
            raise HyperparameterError(f"Invalid capturable for {who}: True (allowed: False; ravine's {who} reads "
                                      "ε, α, ρ as Python numbers, which CUDA-graph capture cannot replay)")
        if differentiable:
            raise HyperparameterError(f"Invalid differentiable for {who}: True (allowed: False; the update runs "
                                      "in place under torch.no_grad())")
        if foreach is False:
            raise HyperparameterError(f"Invalid foreach for {who}: False (allowed: True or None; ravine's {who} "
                                      "runs foreach ops or torch's fused kernel, it has no per-tensor loop)")
        if fused and foreach:
            raise HyperparameterError("Invalid fused, foreach: both True (allowed: at most one of them True)")
        return {"maximize": maximize, "fused": not foreach if fused is None else fused, "foreach": foreach,
                "capturable": False, "differentiable": False}

    @torch.no_grad()
    def step(self, closure: Closure = None) -> Any:
        """Take one step; ``closure`` (optional) re-evaluates the loss with ``backward``."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            if any(p.grad.is_sparse for p in params):
                raise DataError(f"Invalid gradient: sparse (allowed: dense gradients for {type(self).__name__})")
            for key, members in self._partition(params).items():
                states = [self._init_state(p) for p in members]
                grads = [p.grad for p in members]
                if group.get("maximize", False):  # ascend: the rule runs on −g (new tensors)
                    grads = list(torch._foreach_neg(grads))
                lists = [members, grads] + [[s[k] for s in states] for k in self._state_keys]
                for dev_lists, _ in self._group_tensors_by_device_and_dtype(lists).values():
                    self._step_tensors(group, key, *dev_lists)
            self._after_step(group, params)
        return loss

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """torch's ``load_state_dict``, after refusing the state of another optimizer by name.

        Raises:
            CheckpointError: a per-parameter state lacks this rule's keys (e.g. ``momentum_buffer``
                from ``torch.optim.SGD``), saying why it cannot be converted.
        """
        for entry in state_dict.get("state", {}).values():
            if not isinstance(entry, dict) or not entry:
                continue
            missing = [k for k in self._state_keys if k not in entry]
            if missing:
                found = sorted(k for k in entry if k not in self._state_keys)
                why = next((self._foreign_state[k] for k in found if k in self._foreign_state),
                           "it comes from a different optimizer")
                raise CheckpointError(
                    f"Invalid optimizer state for {self.registry_name}: keys {', '.join(found)} (allowed: "
                    f"{', '.join(self._state_keys)}); {why}, so it cannot be converted — build the ravine "
                    "optimizer with fresh state, or load it into the optimizer that saved it")
        super().load_state_dict(state_dict)

    def _step_tensors(self, group: dict[str, Any], key: Any, params: list[torch.Tensor], grads: list[torch.Tensor],
                      *state: list[torch.Tensor]) -> None:
        """One device's and dtype's update: g + regularizers, then ``_update`` chunk by chunk."""
        lists = [params, regularized(params, grads, group), *state]
        for chunk in cache_chunks(lists) if params[0].device.type == "cpu" else [lists]:
            self._update(group, key, *chunk)

    # (state key, initial value) of a scalar a parameter carries from its last step; the
    # group's parameters are updated in batches that share it (None: one batch).
    _partition_key: tuple[str, float] | None = None

    def _partition(self, params: list[torch.Tensor]) -> dict[Any, list[torch.Tensor]]:
        if self._partition_key is None:
            return {None: params}
        name = self._partition_key[0]
        batches: dict[Any, list[torch.Tensor]] = {}
        for p in params:
            batches.setdefault(self._init_state(p)[name], []).append(p)
        return batches

    def _after_step(self, group: dict[str, Any], params: list[torch.Tensor]) -> None:
        """Per-parameter bookkeeping after the update (none by default)."""

    def _init_state(self, p: torch.Tensor) -> dict[str, Any]:
        state = self.state[p]
        if not state:
            for key in self._state_keys:
                state[key] = torch.zeros_like(p, memory_format=torch.preserve_format)
        if self._partition_key is not None:
            state.setdefault(*self._partition_key)
        return state

    def _update(self, group: dict[str, Any], key: Any, params: list[torch.Tensor], grads: list[torch.Tensor],
                *state: list[torch.Tensor]) -> None:
        raise NotImplementedError


# --------------------------------------------------------------------------- delegated rules


class SGD(_TorchRule, torch.optim.SGD):
    r"""Gradient descent, θ ← θ − ε (g + λθ + λ₁ sign θ), on ``torch.optim.SGD``'s fused kernel.

    Args:
        params: tensors or param-group dicts.
        lr: ε ≥ 0.
        weight_decay: λ ≥ 0 (L2).
        l1: λ₁ ≥ 0 (L1).
        fused: None picks torch's fused kernel where it runs (foreach otherwise).
        maximize, foreach, differentiable: as in ``torch.optim.SGD``; capturable: refused (torch's
            SGD has none).

    Example:
        >>> w = torch.nn.Parameter(torch.tensor([1.0]))
        >>> opt = SGD([w], lr=0.1); w.grad = torch.tensor([2.0]); _ = opt.step(); w.data
        tensor([0.8000])
    """

    _torch_class = torch.optim.SGD
    momentum_fixed = True  # the group has a ``momentum`` key (torch's), pinned to 0
    _checks = {**_CHECKS, "momentum": lambda v: _no_momentum(v, "sgd")}

    def __init__(self, params: Params, lr: float = 0.01, weight_decay: float = 0.0, l1: float = 0.0,
                 *, maximize: bool = False, foreach: bool | None = None, fused: bool | None = None,
                 capturable: bool = False, differentiable: bool = False) -> None:
        check_hyperparameters({"lr": lr, "weight_decay": weight_decay, "l1": l1})
        items, tensors = split_params(params)
        self._extra_defaults = {"l1": l1}
        flags = torch_flags(torch.optim.SGD, "sgd", tensors, maximize=maximize, foreach=foreach, fused=fused,
                            capturable=capturable, differentiable=differentiable)
        torch.optim.SGD.__init__(self, items, lr=lr, weight_decay=weight_decay, **flags)
        self.defaults["l1"] = l1

    def _sync_group_keys(self) -> None:
        # torch's SGD keeps a ``momentum`` key (0); a momentum schedule writing it would
        # silently turn this into torch's heavy-ball rule, so refuse instead.
        for group in self.param_groups:
            _no_momentum(group["momentum"], "sgd")


def _no_momentum(value: Any, name: str) -> None:
    # The group key exists because torch's class has it; a scheduler that cycles momentum
    # (OneCycleLR, CyclicLR with their default cycle_momentum=True) writes it. Honouring it would
    # silently switch to torch's heavy-ball rule, not the course's, hence a refusal that says how.
    if value != 0:
        raise HyperparameterError(f"Invalid momentum for {name}: {value!r} (allowed: 0; {name} has no momentum — "
                                  "with OneCycleLR or CyclicLR pass cycle_momentum=False, or use the 'momentum' or "
                                  "'nesterov' optimizer)")


class AdaGrad(_TorchRule, torch.optim.Adagrad):
    r"""AdaGrad, r ← r + g⊙g ; θ ← θ − ε g / (δ + √r), on ``torch.optim.Adagrad`` (fused).

    torch computes ``θ − lr · g / (√sum + eps)`` with ``lr_decay = 0`` and
    ``initial_accumulator_value = 0``: the course's rule with δ = eps.

    Args:
        params: tensors or param-group dicts.
        lr: ε ≥ 0.
        eps: δ > 0 (course default 1e-7).
        weight_decay: λ ≥ 0.
        l1: λ₁ ≥ 0.
        fused: None picks torch's fused kernel where it runs.

    Example:
        >>> w = torch.nn.Parameter(torch.tensor([1.0]))
        >>> opt = AdaGrad([w], lr=0.1); w.grad = torch.tensor([3.0]); _ = opt.step()
        >>> round(w.item(), 6)  # first step: ε g / |g| = ε
        0.9
    """

    _torch_class = torch.optim.Adagrad

    def __init__(self, params: Params, lr: float = 0.01, eps: float = 1e-7, weight_decay: float = 0.0,
                 l1: float = 0.0, *, maximize: bool = False, foreach: bool | None = None, fused: bool | None = None,
                 capturable: bool = False, differentiable: bool = False) -> None:
        check_hyperparameters({"lr": lr, "eps": eps, "weight_decay": weight_decay, "l1": l1})
        items, tensors = split_params(params)
        self._extra_defaults = {"l1": l1}
        flags = torch_flags(torch.optim.Adagrad, "adagrad", tensors, maximize=maximize, foreach=foreach,
                            fused=fused, capturable=capturable, differentiable=differentiable)
        torch.optim.Adagrad.__init__(self, items, lr=lr, eps=eps, weight_decay=weight_decay, **flags)
        self.defaults["l1"] = l1


class Adam(_TorchRule, torch.optim.Adam):
    r"""Adam on ``torch.optim.Adam`` (fused):

    s ← ρ1 s + (1−ρ1) g ; r ← ρ2 r + (1−ρ2) g⊙g ; ŝ = s/(1−ρ1ᵗ) ; r̂ = r/(1−ρ2ᵗ) ;
    θ ← θ − ε ŝ / (√r̂ + δ).

    torch adds ``eps`` after dividing √r by √(1−ρ2ᵗ), i.e. to √r̂, as the course
    does; ``weight_decay`` is L2 added to g (not AdamW's decoupled decay).

    Args:
        params: tensors or param-group dicts.
        lr: ε ≥ 0.
        betas: (ρ1, ρ2), each in [0, 1).
        eps: δ > 0.
        weight_decay: λ ≥ 0.
        l1: λ₁ ≥ 0.
        fused: None picks torch's fused kernel where it runs.

    Example:
        >>> w = torch.nn.Parameter(torch.tensor([1.0, 1.0]))
        >>> opt = Adam([w], lr=0.1); w.grad = torch.tensor([5.0, -0.01]); _ = opt.step(); w.data
        tensor([0.9000, 1.1000])
    """

    _torch_class = torch.optim.Adam

    def __init__(self, params: Params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, l1: float = 0.0, *, maximize: bool = False,
                 foreach: bool | None = None, fused: bool | None = None, capturable: bool = False,
                 differentiable: bool = False) -> None:
        check_hyperparameters({"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "l1": l1})
        items, tensors = split_params(params)
        self._extra_defaults = {"l1": l1}
        flags = torch_flags(torch.optim.Adam, "adam", tensors, maximize=maximize, foreach=foreach, fused=fused,
                            capturable=capturable, differentiable=differentiable)
        torch.optim.Adam.__init__(self, items, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                  **flags)
        self.defaults["l1"] = l1


class RMSPropEpsOutside(_TorchRule, torch.optim.RMSprop):
    r"""RMSProp with δ outside the root, on ``torch.optim.RMSprop`` (foreach; torch has no fused one):

    r ← ρ r + (1−ρ) g⊙g ; θ ← θ − ε g / (√r + δ).

    The group key ``rho`` is the source of truth (torch calls it ``alpha``); it
    is copied to ``alpha`` before every step, so a schedule changes ``rho``.

    Example:
        >>> w = torch.nn.Parameter(torch.tensor([1.0]))
        >>> opt = RMSPropEpsOutside([w], lr=0.01, rho=0.9); w.grad = torch.tensor([2.0]); _ = opt.step()
        >>> round(w.item(), 4)  # 1 − 0.01 · 2 / √(0.1 · 4)
        0.9684
    """

    _torch_class = torch.optim.RMSprop
    momentum_fixed = True
    _checks = {**_CHECKS, "momentum": lambda v: _no_momentum(v, "rmsprop")}

    def __init__(self, params: Params, lr: float = 1e-3, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0.0, l1: float = 0.0, *, maximize: bool = False, foreach: bool | None = None,
                 fused: bool | None = None, capturable: bool = False, differentiable: bool = False) -> None:
        check_hyperparameters({"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay, "l1": l1})
        items, tensors = split_params(params)
        self._extra_defaults = {"l1": l1, "rho": rho, "eps_inside_sqrt": False}
        if fused:
            raise HyperparameterError("Invalid fused for rmsprop with eps_inside_sqrt=False: True (allowed: False "
                                      "or None; torch.optim.RMSprop has no fused kernel)")
        flags = torch_flags(torch.optim.RMSprop, "rmsprop", tensors, maximize=maximize,
                            foreach=True if foreach is None and not differentiable else foreach, fused=False,
                            capturable=capturable, differentiable=differentiable)
        flags.pop("fused", None)
        torch.optim.RMSprop.__init__(self, items, lr=lr, alpha=rho, eps=eps, weight_decay=weight_decay, **flags)
        self.defaults.update(self._extra_defaults)

    def _sync_group_keys(self) -> None:
        for group in self.param_groups:
            _no_momentum(group["momentum"], "rmsprop")  # torch's key; a schedule must not switch it on
            group["alpha"] = group["rho"]


# --------------------------------------------------------------------------- rules written here


class _MomentumRule(_ForeachRule):
    """Shared by :class:`Momentum` and :class:`Nesterov`: hyperparameters, state ``velocity`` (v, starts
    at 0), and when torch's fused SGD kernel computes the course's v ← α v − ε g exactly."""

    _state_keys = ("velocity",)
    _foreign_state = {"momentum_buffer": "torch.optim.SGD keeps buf ← α buf + g and steps θ − ε buf; the "
                                         "course's v ← α v − ε g equals −ε buf only while ε never changed"}

    def __init__(self, params: Params, lr: float = 0.01, momentum: float = 0.9, weight_decay: float = 0.0,
                 l1: float = 0.0, *, maximize: bool = False, foreach: bool | None = None, fused: bool | None = None,
                 capturable: bool = False, differentiable: bool = False) -> None:
        defaults = {"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "l1": l1,
                    **self._flag_defaults(maximize=maximize, foreach=foreach, fused=fused, capturable=capturable,
                                          differentiable=differentiable)}
        check_hyperparameters(defaults, self._checks)
        super().__init__(split_params(params)[0], defaults)

    def _fused_dampening(self, group: dict[str, Any], lists: list[list[torch.Tensor]]) -> float | None:
        # With buf = v, momentum = α and 1 − dampening = −ε, torch's fused SGD kernel updates
        # v ← α v − ε g in one pass. α = 0 would switch its buffer off, hence foreach. Under
        # torch.compile the private kernel has no fake implementation: foreach ops, which compile.
        if (not group["fused"] or group["momentum"] == 0 or torch.compiler.is_compiling()
                or not fused_cpu_tensors(lists)):
            return None
        return exact_dampening(group["lr"], lists[0][0].dtype)

    @staticmethod
    def _fused_velocity_update(params: list[torch.Tensor], grads: list[torch.Tensor], velocity: list[torch.Tensor],
                               momentum: float, dampening: float, lr: float, weight_decay: float = 0.0) -> None:
        """v ← α v + (1 − dampening)(g + λ θ) ; θ ← θ − lr · v in one pass (torch's fused SGD kernel).

        The op behind ``torch.optim.SGD(fused=True)``, called directly: ``step`` has
        already grouped by device and dtype, and Nesterov calls it once per cache
        chunk, where the functional's regrouping would cost more than the kernel.
        """
        torch._fused_sgd_(params, grads, velocity, weight_decay=weight_decay, momentum=momentum, lr=lr,
                          dampening=dampening, nesterov=False, maximize=False, is_first_step=False)


class Momentum(_MomentumRule):
    r"""The course's momentum: v ← α v − ε g ; θ ← θ + v.

    ``maximize=True`` runs the rule on −g. ``foreach=True`` (or ``fused=False``) keeps to
    foreach ops; ``foreach=False``, ``capturable=True`` and ``differentiable=True`` are refused
    (HyperparameterError naming the flag). Under ``torch.compile`` the foreach ops run.

    α and ε are read from the param group at every step, so a momentum or
    learning-rate schedule changes them between steps (torch's SGD momentum
    keeps ``α buf + g`` and multiplies by the current ε, a different rule once
    ε changes). State per parameter: ``velocity`` (v, starts at 0).

    Kernel: on the CPU, torch's fused SGD kernel run on the velocity itself,
    with ``momentum`` α, ``dampening`` 1 + ε (so its 1 − dampening is −ε; see
    :func:`exact_dampening`) and ``lr`` −1 (θ − (−1) v = θ + v): one pass over
    θ, g and v. Steps where that is not exact (α = 0, a float64 ε with bits
    below 2⁻⁵², non-contiguous tensors, other devices) or ``fused=False`` use
    foreach ops; both compute the same rule.

    Args:
        params: tensors or param-group dicts.
        lr: ε ≥ 0.
        momentum: α in [0, 1).
        weight_decay: λ ≥ 0.
        l1: λ₁ ≥ 0.
        fused: False keeps to foreach ops.

    Example:
        >>> w = torch.nn.Parameter(torch.tensor([1.0]))
        >>> opt = Momentum([w], lr=0.1, momentum=0.5)
        >>> for _ in range(2):
        ...     w.grad = torch.tensor([1.0]); _ = opt.step()
        >>> opt.state[w]["velocity"]  # 0.5 · (−0.1) − 0.1
        tensor([-0.1500])
    """

    registry_name = "momentum"

    def _step_tensors(self, group: dict[str, Any], key: Any, params: list[torch.Tensor], grads: list[torch.Tensor],
                      velocity: list[torch.Tensor]) -> None:
        dampening = self._fused_dampening(group, [params, grads, velocity])
        if dampening is None:
            return super()._step_tensors(group, key, params, grads, velocity)
        # L2 inside the kernel (g + λθ); L1 (rare) as new gradient tensors
        grads = regularized(params, grads, {"l1": group["l1"]})
        self._fused_velocity_update(params, grads, velocity, group["momentum"], dampening, lr=-1.0,
                                    weight_decay=group["weight_decay"])
        return None

    def _update(self, group: dict[str, Any], key: Any, params: list[torch.Tensor], grads: list[torch.Tensor],
                velocity: list[torch.Tensor]) -> None:
        torch._foreach_mul_(velocity, group["momentum"])
        torch._foreach_add_(velocity, grads, alpha=-group["lr"])
        torch._foreach_add_(params, velocity)


class Nesterov(_MomentumRule):
    r"""The course's Nesterov momentum, v ← α v − ε ∇L(θ + α v) ; θ ← θ + v, with one gradient per step.

    Change of variables: the parameter tensor holds the look-ahead point
    φ = θ + α v, so the caller's ordinary backward pass gives ∇L(θ + α v)
    directly. With g = ∇L(φ_t) the step is

        v_{t+1} = α v_t − ε g ;  θ_{t+1} = θ_t + v_{t+1} ;  φ_{t+1} = θ_{t+1} + α v_{t+1},

    which in φ alone reads φ_{t+1} = φ_t + (α − β) v_t + α v_{t+1} − ε g, where β
    is the α that built φ_t (state ``lookahead_momentum``; β = α when α is
    constant). So the parameter trajectory is the course's θ trajectory shifted
    by α v, and :meth:`theta` returns θ = φ − β v exactly (use it for evaluation).

    Under a momentum schedule the look-ahead of step t+1 is formed at the end
    of step t, before the schedule sets α_{t+1}; the gradient is then taken at
    θ_t + α_{t−1} v_t instead of θ_t + α_t v_t — the two agree except at the
    steps where α changes. ε may change freely: the trajectory stays exact.

    The look-ahead point φ_0 = θ_0 (v_0 = 0). Weight decay and L1 act on the
    point where the gradient is taken (φ), as they would as part of L.

    Kernel: as :class:`Momentum` (same conditions), torch's fused SGD kernel
    updates v and adds α v_{t+1} to φ (``lr`` −α), then one foreach op adds
    −ε g, chunk by chunk so that φ and g are still in cache. (torch's own
    Nesterov kernel would need the buffer −v/ε instead of v.)

    Args:
        params: tensors or param-group dicts.
        lr: ε ≥ 0.
        momentum: α in [0, 1).
        weight_decay: λ ≥ 0.
        l1: λ₁ ≥ 0.
        fused: False keeps to foreach ops.

    Example:
        >>> w = torch.nn.Parameter(torch.tensor([1.0]))
        >>> opt = Nesterov([w], lr=0.1, momentum=0.5)
        >>> w.grad = torch.tensor([1.0]); _ = opt.step()
        >>> opt.theta()[0], w.data  # θ = 1 − 0.1 ; φ = θ + 0.5 · (−0.1)
        (tensor([0.9000]), tensor([0.8500]))
    """

    registry_name = "nesterov"
    # β (the α that built each look-ahead point) is the same for every parameter
    # of a group unless some skipped a step without a gradient.
    _partition_key = ("lookahead_momentum", 0.0)

    def _step_tensors(self, group: dict[str, Any], beta: float, params: list[torch.Tensor],
                      grads: list[torch.Tensor], velocity: list[torch.Tensor]) -> None:
        dampening = self._fused_dampening(group, [params, grads, velocity])
        if dampening is None:
            return super()._step_tensors(group, beta, params, grads, velocity)
        alpha, lr = group["momentum"], group["lr"]
        grads = regularized(params, grads, group)  # taken at φ before the kernel moves it
        if alpha != beta:
            torch._foreach_add_(params, velocity, alpha=alpha - beta)
        for chunk_params, chunk_grads, chunk_velocity in cache_chunks([params, grads, velocity]):
            self._fused_velocity_update(chunk_params, chunk_grads, chunk_velocity, alpha, dampening, lr=-alpha)
            torch._foreach_add_(chunk_params, chunk_grads, alpha=-lr)
        return None

    def _update(self, group: dict[str, Any], beta: float, params: list[torch.Tensor], grads: list[torch.Tensor],
                velocity: list[torch.Tensor]) -> None:
        alpha, lr = group["momentum"], group["lr"]
        torch._foreach_add_(params, velocity, alpha=alpha * (1.0 + alpha) - beta)
        torch._foreach_add_(params, grads, alpha=-(1.0 + alpha) * lr)
        torch._foreach_mul_(velocity, alpha)
        torch._foreach_add_(velocity, grads, alpha=-lr)

    def _after_step(self, group: dict[str, Any], params: list[torch.Tensor]) -> None:
        for p in params:
            self.state[p]["lookahead_momentum"] = group["momentum"]

    @torch.no_grad()
    def theta(self) -> list[torch.Tensor]:
        """The course's θ = φ − β v for every parameter (new tensors, in param-group order)."""
        out = []
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state.get(p, {})
                if "velocity" in state:
                    out.append(p.detach() - state["lookahead_momentum"] * state["velocity"])
                else:
                    out.append(p.detach().clone())
        return out


# ``step`` given to torch's fused Adam kernel by :class:`RMSProp`: ρ^step underflows to 0 in
# double for every ρ < 1, so both bias corrections 1 − ρ^step are exactly 1.
_NO_BIAS_CORRECTION_STEP = 2.0**62


class RMSProp(_ForeachRule):
    r"""The course's RMSProp: r ← ρ r + (1−ρ) g⊙g ; θ ← θ − ε g / √(δ + r).

    δ sits inside the root, as in the course (torch's ``RMSprop`` adds it
    outside: use ``rmsprop`` with ``eps_inside_sqrt=False`` for that form).

    State per parameter: ``squared_grad_avg_plus_eps`` = r + δ, the square of
    the step's denominator, and ``eps_in_avg`` (the δ it holds; δ may change
    between steps); :meth:`squared_grad_avg` returns r. r starts at 0.

    Kernel: on the CPU, torch's fused Adam kernel with ρ1 = 0, ρ2 = ρ, its
    ``eps`` 0 and a step count at which both bias corrections are exactly 1
    computes s = g, u ← ρ u + (1−ρ) g⊙g, θ ← θ − ε s / √u in one pass. With
    u = r + δ' it gives ρ r + (1−ρ) g⊙g + ρ δ', so one foreach op first sets
    δ' = δ / ρ (adds δ/ρ − δ_old to the stored r + δ_old, chunk by chunk so the
    kernel finds it in cache), and u leaves the kernel as the new r + δ (up to
    rounding). The kernel's first-moment buffer is g itself:
    0 · g + 1 · g rewrites the same values (the caller's gradient is read, not
    changed, unless it holds ±inf, where the step is NaN anyway). ρ = 0,
    non-contiguous tensors, other devices or ``fused=False`` use foreach ops.

    Args:
        params: tensors or param-group dicts.
        lr: ε ≥ 0.
        rho: ρ in [0, 1).
        eps: δ > 0 (course default 1e-6).
        weight_decay: λ ≥ 0.
        l1: λ₁ ≥ 0.
        fused: False keeps to foreach ops.

    Example:
        >>> w = torch.nn.Parameter(torch.tensor([1.0]))
        >>> opt = RMSProp([w], lr=0.01, rho=0.9); w.grad = torch.tensor([2.0]); _ = opt.step()
        >>> round(w.item(), 4), round(opt.squared_grad_avg()[0].item(), 4)  # 1 − 0.01 · 2 / √(1e-6 + 0.4)
        (0.9684, 0.4)
    """

    _state_keys = ("squared_grad_avg_plus_eps",)
    registry_name = "rmsprop"
    _foreign_state = {"square_avg": "torch.optim.RMSprop keeps r without δ and adds δ outside the root; the "
                                    "course's RMSProp keeps r + δ inside it (use eps_inside_sqrt=False to "
                                    "continue torch's rule)"}

    def __init__(self, params: Params, lr: float = 1e-3, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0.0, l1: float = 0.0, *, maximize: bool = False, foreach: bool | None = None,
                 fused: bool | None = None, capturable: bool = False, differentiable: bool = False) -> None:
        defaults = {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay, "l1": l1,
                    "eps_inside_sqrt": True,
                    **self._flag_defaults(maximize=maximize, foreach=foreach, fused=fused, capturable=capturable,
                                          differentiable=differentiable)}
        check_hyperparameters(defaults, self._checks)
        super().__init__(split_params(params)[0], defaults)

    # the δ held in r + δ differs between parameters only if δ changed while some had no gradient
    _partition_key = ("eps_in_avg", 0.0)

    def _step_tensors(self, group: dict[str, Any], eps_old: float, params: list[torch.Tensor],
                      grads: list[torch.Tensor], avg_plus_eps: list[torch.Tensor]) -> None:
        rho, eps = group["rho"], group["eps"]
        if not (group["fused"] and rho > 0 and math.isfinite(eps / rho) and not torch.compiler.is_compiling()
                and fused_cpu_tensors([params, grads, avg_plus_eps])):
            return super()._step_tensors(group, eps_old, params, grads, avg_plus_eps)
        grads = regularized(params, grads, group)  # the kernel writes its first moment (= g) into these
        step = torch.full((), _NO_BIAS_CORRECTION_STEP, device=params[0].device)
        # chunk by chunk, so the kernel finds r + δ/ρ still in cache; the op behind
        # torch.optim.Adam(fused=True), called directly (its functional would regroup every chunk)
        for chunk_params, chunk_grads, chunk_avg in cache_chunks([params, grads, avg_plus_eps]):
            torch._foreach_add_(chunk_avg, eps / rho - eps_old)
            torch._fused_adam_(chunk_params, chunk_grads, chunk_grads, chunk_avg, [], [step] * len(chunk_params),
                               lr=group["lr"], beta1=0.0, beta2=rho, weight_decay=0.0, eps=0.0, amsgrad=False,
                               maximize=False)
        return None

    def _update(self, group: dict[str, Any], eps_old: float, params: list[torch.Tensor], grads: list[torch.Tensor],
                avg_plus_eps: list[torch.Tensor]) -> None:
        rho, eps = group["rho"], group["eps"]
        # ρ (r + δ_old) + (1−ρ) g⊙g + (δ − ρ δ_old) = r_new + δ
        torch._foreach_mul_(avg_plus_eps, rho)
        torch._foreach_addcmul_(avg_plus_eps, grads, grads, value=1.0 - rho)
        torch._foreach_add_(avg_plus_eps, eps - rho * eps_old)
        torch._foreach_addcdiv_(params, grads, torch._foreach_sqrt(avg_plus_eps), value=-group["lr"])

    def _after_step(self, group: dict[str, Any], params: list[torch.Tensor]) -> None:
        for p in params:
            self.state[p]["eps_in_avg"] = group["eps"]

    @torch.no_grad()
    def squared_grad_avg(self) -> list[torch.Tensor]:
        """The course's r = (r + δ) − δ for every parameter (new tensors, in param-group order; 0 before a step)."""
        out = []
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state.get(p, {})
                if "squared_grad_avg_plus_eps" in state:
                    out.append(state["squared_grad_avg_plus_eps"] - state["eps_in_avg"])
                else:
                    out.append(torch.zeros_like(p.detach()))
        return out


def rmsprop(params: Params, lr: float = 1e-3, rho: float = 0.9, eps: float = 1e-6, weight_decay: float = 0.0,
            l1: float = 0.0, eps_inside_sqrt: bool = True, **flags: Any) -> torch.optim.Optimizer:
    """The registry's ``rmsprop``: :class:`RMSProp` (δ inside the root) or :class:`RMSPropEpsOutside`.

    Example:
        >>> type(rmsprop([torch.nn.Parameter(torch.ones(1))], eps_inside_sqrt=False)).__name__
        'RMSPropEpsOutside'
    """
    _check_bool("eps_inside_sqrt")(eps_inside_sqrt)
    cls = RMSProp if eps_inside_sqrt else RMSPropEpsOutside
    return cls(params, lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, l1=l1, **flags)


# --------------------------------------------------------------------------- registry

_REG = {"weight_decay": 0.0, "l1": 0.0}

OPTIMIZERS: list[OptimizerInfo] = [
    OptimizerInfo("sgd", SGD, "θ ← θ − ε g", {"lr": 0.01, **_REG}, aliases=("gd",), train_lr=0.1,
                  extra_keys=FLAGS),
    OptimizerInfo("momentum", Momentum, "v ← α v − ε g ; θ ← θ + v",
                  {"lr": 0.01, "momentum": 0.9, **_REG}, train_lr=0.02, extra_keys=FLAGS),
    OptimizerInfo("nesterov", Nesterov, "v ← α v − ε ∇L(θ + α v) ; θ ← θ + v",
                  {"lr": 0.01, "momentum": 0.9, **_REG}, train_lr=0.02, extra_keys=FLAGS),
    OptimizerInfo("adagrad", AdaGrad, "r ← r + g⊙g ; θ ← θ − ε g / (δ + √r)",
                  {"lr": 0.01, "eps": 1e-7, **_REG}, train_lr=0.03, extra_keys=FLAGS),
    OptimizerInfo("rmsprop", rmsprop, "r ← ρ r + (1−ρ) g⊙g ; θ ← θ − ε g / √(δ + r)",
                  {"lr": 1e-3, "rho": 0.9, "eps": 1e-6, **_REG, "eps_inside_sqrt": True}, train_lr=1e-3, extra_keys=FLAGS),
    OptimizerInfo("adam", Adam,
                  "s ← ρ1 s + (1−ρ1) g ; r ← ρ2 r + (1−ρ2) g⊙g ; θ ← θ − ε ŝ / (√r̂ + δ)",
                  {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, **_REG}, train_lr=1e-3, extra_keys=FLAGS),
]
