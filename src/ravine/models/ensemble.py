"""Ensemble forms of ravine's models: N copies of one architecture evaluated in one batched pass.

N small networks trained one after another pay PyTorch's per-operation dispatch N
times; stacking their parameters along a new leading axis pays it once.
:func:`ensemble` turns N models of one architecture into an :class:`Ensemble`:

- ``"baddbmm"``: ravine's MLPs (``Linear`` layers, element-wise activations,
  ``PReLU``, ``LayerNorm``, ``Dropout``) run as batched matrix products,
  ``h_{k+1} = act(baddbmm(b_k, h_k, W_kᵀ))`` with ``W_k`` of shape
  ``(N, out, in)``. ``torch.func.vmap(functional_call)`` was measured first:
  its own per-op cost ate most of the gain (1.3× at six runs, against 2.8× for
  the batched products), so the MLP gets this hand-written form.
- ``"vmap"``: any other model without buffers (e.g. ravine's CNN) runs through
  ``torch.func.functional_call`` under ``torch.func.vmap`` (dropout draws differ
  per member: ``randomness="different"``).
- models with buffers that training changes (BatchNorm's running statistics)
  have no ensemble form: :func:`ensemble_kind` says ``"sequential"`` and why.

Dropout draws differ per member in both forms (each member's slice of the
activation gets its own mask).

Example:
    >>> import torch
    >>> from ravine.models import mlp
    >>> nets = [mlp([4, 8, 3], seed=s) for s in range(3)]
    >>> ens = ensemble(nets)
    >>> x = torch.randn(5, 4)
    >>> out = ens(x)
    >>> out.shape
    torch.Size([3, 5, 3])
    >>> bool(torch.allclose(out[1], nets[1](x), atol=1e-6))
    True
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ravine.errors import ConfigError

# Parameter-free modules that act element by element, so they apply unchanged to an (N, B, H) tensor.
_ELEMENTWISE = (nn.ReLU, nn.Sigmoid, nn.Tanh, nn.LeakyReLU, nn.ELU, nn.GELU, nn.Identity, nn.SiLU, nn.Softplus)

Backward = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
_aten = torch.ops.aten


def _activation_backward(m: nn.Module) -> Backward | None:
    """``bwd(grad_out, pre, out) -> grad_pre`` with the aten kernel torch's autograd calls for ``m``, or None."""
    if isinstance(m, nn.Identity):
        return lambda g, pre, out: g
    if isinstance(m, nn.ReLU):
        return lambda g, pre, out: _aten.threshold_backward(g, out, 0)
    if getattr(m, "inplace", False):  # the rules below read the input, which an in-place forward overwrote
        return None
    if isinstance(m, nn.Tanh):
        return lambda g, pre, out: _aten.tanh_backward(g, out)
    if isinstance(m, nn.Sigmoid):
        return lambda g, pre, out: _aten.sigmoid_backward(g, out)
    if isinstance(m, nn.LeakyReLU):
        slope = m.negative_slope
        return lambda g, pre, out: _aten.leaky_relu_backward(g, pre, slope, False)
    if isinstance(m, nn.ELU):
        alpha = m.alpha
        return lambda g, pre, out: _aten.elu_backward(g, alpha, 1, 1, False, pre)
    if isinstance(m, nn.GELU):
        approximate = m.approximate
        return lambda g, pre, out: _aten.gelu_backward(g, pre, approximate=approximate)
    if isinstance(m, nn.SiLU):
        return lambda g, pre, out: _aten.silu_backward(g, pre)
    return None


def ensemble_kind(model: nn.Module) -> tuple[str, str]:
    """How N copies of ``model`` can run together: ``("baddbmm" | "vmap" | "sequential", why)``.

    Example:
        >>> from ravine.models import mlp
        >>> ensemble_kind(mlp([4, 8, 3]))[0]
        'baddbmm'
        >>> ensemble_kind(mlp([4, 8, 3], norm="batch"))[0]
        'sequential'
    """
    if any(True for _ in model.buffers()):
        names = sorted({type(m).__name__ for m in model.modules() if any(True for _ in m.buffers(recurse=False))})
        return "sequential", (f"{', '.join(names)} keeps running statistics (buffers) that every member would "
                              "update; such models train one at a time")
    if isinstance(model, nn.Sequential) and all(
            isinstance(m, (nn.Linear, nn.Dropout, nn.PReLU, nn.LayerNorm, *_ELEMENTWISE)) for m in model):
        if all(m.num_parameters == 1 for m in model if isinstance(m, nn.PReLU)):
            return "baddbmm", "MLP: batched matrix products over stacked weights"
    return "vmap", "torch.func.vmap over functional_call (no hand-written ensemble form for this model)"


class Ensemble(nn.Module):
    """N members of one architecture with stacked parameters; ``forward(x) -> (N, B, ...)``.

    Attributes:
        n: number of members.
        kind: ``"baddbmm"`` or ``"vmap"``.
        stacked: the stacked parameters, in the order of ``template.parameters()``,
            each of shape ``(N, *shape)`` (leaves that require grad).

    ``member_params(i)`` are views into ``stacked`` (no grad of their own):
    an optimizer stepping them in place updates member ``i`` of the ensemble.
    ``x`` (``(B, ...)``) is shared by every member.
    """

    def __init__(self, models: Sequence[nn.Module], kind: str | None = None) -> None:
        super().__init__()
        if not models:
            raise ConfigError("Invalid models: empty (allowed: at least one model)")
        template = models[0]
        auto, why = ensemble_kind(template)
        kind = kind or auto
        if kind == "sequential" or (kind == "baddbmm" and auto != "baddbmm") or kind not in ("baddbmm", "vmap"):
            raise ConfigError(f"Invalid ensemble kind: {kind!r} for this model ({why})")
        shapes = [p.shape for p in template.parameters()]
        for m in models[1:]:
            if [p.shape for p in m.parameters()] != shapes or type(m) is not type(template):
                raise ConfigError("Invalid models: members differ in architecture (allowed: N copies of one model)")
        self.n, self.kind = len(models), kind
        self.names = [name for name, _ in template.named_parameters()]
        self.stacked = nn.ParameterList(
            nn.Parameter(torch.stack([p.detach() for p in ps])) for ps in zip(*(m.parameters() for m in models),
                                                                              strict=True))
        self._params = list(self.stacked)  # plain list: ParameterList indexing costs µs per call
        self.template = copy.deepcopy(template)
        self._plan: list[tuple[str, object]] = self._mlp_plan(template) if kind == "baddbmm" else []
        self._backward = self._backward_plan(self._plan) if kind == "baddbmm" else None
        self._vmapped: Callable | None = None

    # --- members ------------------------------------------------------------------------------

    def member_params(self, i: int) -> list[torch.Tensor]:
        """Views of member ``i``'s parameters into the stacked storage (``requires_grad=False``)."""
        return [p.detach()[i] for p in self._params]

    def member_grads(self, i: int) -> list[torch.Tensor | None]:
        """Views of member ``i``'s gradients into the stacked gradients (None before the first backward)."""
        return [None if p.grad is None else p.grad[i] for p in self._params]

    def zero_grad_storage(self) -> bool:
        """Zero the stacked gradients in place, allocating them once; True when they were just allocated.

        Kept allocated (rather than set to None) so that views of them bound once
        as each member's ``.grad`` stay valid: backward then adds into them in place.
        """
        fresh = False
        for p in self._params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
                fresh = True
            else:
                p.grad.zero_()
        return fresh

    @property
    def has_fused_step(self) -> bool:
        """True when :meth:`loss_and_grad` can train this ensemble (an MLP of ``Linear`` layers and
        activations only: no dropout, ``LayerNorm`` or ``PReLU``)."""
        return self._backward is not None

    def loss_and_grad(self, x: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
        """Each member's mean loss on ``(x, y)``, with its gradient written into the stacked ``.grad``.

        One forward and one backward pass of batched matrix products, written out
        instead of run through ``torch.autograd``: autograd's graph bookkeeping and
        its accumulation into the persistent (bound-once) gradient storage doubled
        the time of a step of small MLPs (measured: 5.3 vs 3.0 ms at 16 members of
        64-128-128-10, batch 32). The gradients overwrite ``.grad`` (no zeroing
        needed), are computed with the aten kernels autograd itself calls for the
        activations, and equal autograd's to rounding.

        Args:
            x: inputs ``(B, in)``, shared by every member.
            y: targets: class indices ``(B,)`` for ``"cross_entropy"``; for
                ``"mse"`` / ``"bce"`` a tensor with ``B * out`` entries.
            loss: ``"cross_entropy"``, ``"mse"`` or ``"bce"`` (ravine's losses, mean over the batch).

        Returns:
            The ``(N,)`` per-member losses (no graph).

        Raises:
            ConfigError: no fused form (see :attr:`has_fused_step`), 3-D input, or an unknown loss.

        Example:
            >>> from ravine.models import mlp
            >>> ens = Ensemble([mlp([4, 8, 3], seed=s) for s in range(2)])
            >>> losses = ens.loss_and_grad(torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1]), "cross_entropy")
            >>> losses.shape, ens.stacked[0].grad.shape
            (torch.Size([2]), torch.Size([2, 8, 4]))
        """
        if self._backward is None:
            raise ConfigError("Invalid ensemble for a fused step: dropout, LayerNorm or PReLU (allowed: Linear "
                              "layers and ReLU, tanh, sigmoid, leaky ReLU, ELU, GELU, SiLU, identity)")
        if x.dim() != 2:
            raise ConfigError(f"Invalid x: {x.dim()}-D (allowed: (batch, features))")
        params = self._params
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        grads = [p.grad for p in params]
        n, batch = self.n, x.shape[0]
        with torch.no_grad():
            shared = h = x.unsqueeze(0).expand(n, *x.shape)  # broadcast without copying
            saved: list[tuple[torch.Tensor, torch.Tensor]] = []  # (input, output) of each layer / activation
            for op, arg in self._plan:
                if op == "linear":
                    w_i, b_i = arg  # type: ignore[misc]
                    w = params[w_i].transpose(1, 2)
                    out = torch.bmm(h, w) if b_i is None else torch.baddbmm(params[b_i].unsqueeze(1), h, w)
                else:
                    out = arg(h)  # type: ignore[operator]
                saved.append((h, out))
                h = out
            g, losses = _loss_grad(h, y, loss)
            for (op, arg), bwd, (h_in, h_out) in zip(reversed(self._plan), reversed(self._backward),
                                                      reversed(saved), strict=True):
                if op != "linear":
                    g = bwd(g, h_in, h_out)  # type: ignore[misc]
                    continue
                w_i, b_i = arg  # type: ignore[misc]
                if b_i is not None:
                    torch.sum(g, 1, out=grads[b_i])
                if h_in is shared:  # one matrix product for every member
                    torch.mm(g.transpose(1, 2).reshape(-1, batch), h_in[0], out=grads[w_i].view(-1, h_in.shape[2]))
                    break  # nothing below the input needs a gradient
                torch.bmm(g.transpose(1, 2), h_in, out=grads[w_i])
                g = torch.bmm(g, params[w_i])
        return losses

    @staticmethod
    def _backward_plan(plan: list[tuple[str, object]]) -> list[Backward | None] | None:
        out: list[Backward | None] = []
        for op, arg in plan:
            if op == "linear":
                out.append(None)
            elif op == "act" and (bwd := _activation_backward(arg)) is not None:  # type: ignore[arg-type]
                out.append(bwd)
            else:
                return None
        return out

    def member_model(self, i: int) -> nn.Module:
        """A standalone copy of the template holding member ``i``'s current parameters."""
        model = copy.deepcopy(self.template)
        with torch.no_grad():
            for p, q in zip(model.parameters(), self.member_params(i), strict=True):
                p.copy_(q)
        return model

    # --- forward ------------------------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs of every member, ``(N, B, ...)``."""
        if self.kind == "baddbmm":
            return self._forward_mlp(x)
        return self._forward_vmap(x)

    @staticmethod
    def _mlp_plan(template: nn.Module) -> list[tuple[str, object]]:
        plan: list[tuple[str, object]] = []
        index = 0
        for m in template:  # type: ignore[attr-defined]
            if isinstance(m, nn.Linear):
                plan.append(("linear", (index, index + 1 if m.bias is not None else None)))
                index += 2 if m.bias is not None else 1
            elif isinstance(m, nn.LayerNorm):
                w_i = index if m.elementwise_affine else None
                b_i = index + 1 if m.elementwise_affine and m.bias is not None else None
                plan.append(("layernorm", (m.normalized_shape, m.eps, w_i, b_i)))
                index += 0 if w_i is None else 1 if b_i is None else 2
            elif isinstance(m, nn.PReLU):
                plan.append(("prelu", index))
                index += 1
            elif isinstance(m, nn.Dropout):
                plan.append(("dropout", m.p))
            else:
                plan.append(("act", m))
        return plan

    def _forward_mlp(self, x: torch.Tensor) -> torch.Tensor:
        params = self._params
        h = x
        for op, arg in self._plan:
            if op == "linear":
                w_i, b_i = arg  # type: ignore[misc]
                w = params[w_i]
                if h.dim() == 2:  # shared input: broadcast without copying
                    h = h.unsqueeze(0).expand(self.n, *h.shape)
                if b_i is None:
                    h = torch.bmm(h, w.transpose(1, 2))
                else:
                    h = torch.baddbmm(params[b_i].unsqueeze(1), h, w.transpose(1, 2))
            elif op == "act":
                h = arg(h)  # type: ignore[operator]
            elif op == "dropout":
                h = F.dropout(h, arg, self.training)  # type: ignore[arg-type]
            elif op == "prelu":
                a = params[arg].view(self.n, *([1] * (h.dim() - 1)))  # type: ignore[index]
                h = torch.where(h >= 0, h, a * h)
            else:  # layernorm: normalize per row, then each member's own affine
                shape, eps, w_i, b_i = arg  # type: ignore[misc]
                h = F.layer_norm(h, shape, eps=eps)
                if w_i is not None:
                    h = h * params[w_i].unsqueeze(1)
                if b_i is not None:
                    h = h + params[b_i].unsqueeze(1)
        return h

    def _forward_vmap(self, x: torch.Tensor) -> torch.Tensor:
        from torch.func import functional_call, vmap

        self.template.train(self.training)
        names, template = self.names, self.template

        def one(params: tuple[torch.Tensor, ...], xb: torch.Tensor) -> torch.Tensor:
            return functional_call(template, dict(zip(names, params, strict=True)), (xb,))

        return vmap(one, in_dims=(0, None), randomness="different")(tuple(self._params), x)


def _loss_grad(out: torch.Tensor, y: torch.Tensor, loss: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(∂(Σ_k ℓ_k)/∂out, (ℓ_k)_k) for outputs ``(N, B, C)`` and a mean loss per member."""
    n, batch = out.shape[:2]
    if loss == "cross_entropy":
        logp = torch.log_softmax(out, -1)
        target = y.view(1, batch, 1).expand(n, batch, 1)
        losses = logp.gather(2, target).squeeze(2).mean(1).neg_()
        # (softmax − one-hot) / B, by the two kernels autograd runs for F.cross_entropy (same rounding)
        grad_logp = torch.zeros_like(logp).scatter_(2, target, out.new_full((1, 1, 1), -1.0 / batch)
                                                    .expand(n, batch, 1))
        return torch._log_softmax_backward_data(grad_logp, logp, 2, logp.dtype), losses
    if loss in ("mse", "bce"):
        z = out.reshape(n, *y.shape)
        count = max(y.numel(), 1)
        if loss == "mse":
            diff = z - y
            losses = diff.square().flatten(1).mean(1)
            g = diff.mul_(2.0 / count)
        else:
            losses = F.binary_cross_entropy_with_logits(z, y.expand_as(z), reduction="none").flatten(1).mean(1)
            g = torch.sigmoid(z).sub_(y).div_(count)
        return g.reshape(out.shape), losses
    raise ConfigError(f"Invalid loss: {loss!r} (allowed: cross_entropy, mse, bce)")


def ensemble(models: Sequence[nn.Module], kind: str | None = None) -> Ensemble:
    """Stack N models of one architecture into an :class:`Ensemble` (``kind`` default: the fastest form).

    Raises:
        ConfigError: models that differ, or a kind this model has no form for
            (BatchNorm models: train them one at a time).
    """
    return Ensemble(models, kind)
