"""The course's worked examples of backpropagation, node by node, checked against ``torch.autograd``.

Each example returns the forward value and the backward adjoint (v̄ = ∂f/∂v) of every node of the
graph, computed by hand from the local derivatives — the reverse sweep of the lecture — and the
gradient ``torch.autograd`` finds for the same expression.

Example:
    >>> ex = course_example(2.0, 3.0)
    >>> [row["node"] for row in ex["nodes"]]
    ['x1', 'x2', 'a', 'b', 'f']
    >>> ex["match"]
    True
"""

from __future__ import annotations

import math
from typing import Any

import torch


def _row(node: str, expression: str, value: float, adjoint: float, adjoint_rule: str) -> dict[str, Any]:
    return {"node": node, "expression": expression, "value": value, "adjoint": adjoint, "adjoint_rule": adjoint_rule}


def course_example(x1: float = 2.0, x2: float = 3.0) -> dict[str, Any]:
    """f(x1, x2) = x1·x2 + sin(x2), as the graph a = x1·x2, b = sin(x2), f = a + b.

    Forward: a = x1 x2, b = sin x2, f = a + b. Backward (adjoints v̄ = ∂f/∂v), from f to the inputs:
    f̄ = 1; ā = f̄ · ∂f/∂a = 1; b̄ = f̄ · ∂f/∂b = 1; x̄1 = ā · x2; and x2 feeds *two* nodes, so its
    adjoint is the sum over both paths: x̄2 = ā · x1 + b̄ · cos x2.

    Returns:
        ``{"function", "inputs", "nodes": [{node, expression, value, adjoint, adjoint_rule}],
        "autograd": {x1, x2}, "match"}`` — match: the hand adjoints equal autograd's to 1e-12.
    """
    a, b = x1 * x2, math.sin(x2)
    f = a + b
    f_bar = 1.0
    a_bar, b_bar = f_bar, f_bar
    x1_bar = a_bar * x2
    x2_bar = a_bar * x1 + b_bar * math.cos(x2)  # two paths into x2: their contributions add
    nodes = [
        _row("x1", "input", x1, x1_bar, "x̄1 = ā·x2"),
        _row("x2", "input", x2, x2_bar, "x̄2 = ā·x1 + b̄·cos x2  (two paths, summed)"),
        _row("a", "x1·x2", a, a_bar, "ā = f̄·∂f/∂a = f̄"),
        _row("b", "sin x2", b, b_bar, "b̄ = f̄·∂f/∂b = f̄"),
        _row("f", "a + b", f, f_bar, "f̄ = 1"),
    ]
    t1 = torch.tensor(x1, dtype=torch.float64, requires_grad=True)
    t2 = torch.tensor(x2, dtype=torch.float64, requires_grad=True)
    (t1 * t2 + torch.sin(t2)).backward()
    auto = {"x1": float(t1.grad), "x2": float(t2.grad)}
    match = math.isclose(auto["x1"], x1_bar, rel_tol=1e-12, abs_tol=1e-12) and \
        math.isclose(auto["x2"], x2_bar, rel_tol=1e-12, abs_tol=1e-12)
    return {"function": "f(x1, x2) = x1·x2 + sin(x2)", "inputs": {"x1": x1, "x2": x2}, "nodes": nodes,
            "autograd": auto, "match": match}


def sigmoid_example(w: list[float] | None = None, x: list[float] | None = None, loss: str = "inverse") -> dict[str, Any]:
    """The sigmoid-loss example: z = wᵀx, p = σ(z), and L = 1/p (``loss="inverse"``) or L = log(1/p) (``"log"``).

    Backward with σ′(z) = σ(z)(1 − σ(z)):

    - L = 1/p:      p̄ = −1/p²,  z̄ = p̄ · p(1 − p) = −(1 − p)/p,  w̄ = z̄ x = −(1 − σ(wᵀx))/σ(wᵀx) · x;
    - L = log(1/p): p̄ = −1/p,   z̄ = −(1 − p),                   w̄ = −(1 − σ(wᵀx)) x.

    The course's simplified gradient −(1 − σ(wᵀx)) xᵀ is the second line: it is the gradient of
    log(1/p) = −log σ(wᵀx); for L = 1/p itself the factor 1/σ(wᵀx) stays. Both are checked against
    ``torch.autograd``.

    Returns:
        ``{"function", "nodes", "grad_w" (by hand), "simplified" (−(1 − σ) x), "autograd", "match",
        "simplified_matches"}``.
    """
    from ravine.errors import DataError

    w = [0.5, -0.25] if w is None else list(w)
    x = [1.0, 2.0] if x is None else list(x)
    if len(w) != len(x) or not w:
        raise DataError(f"Invalid w, x: lengths {len(w)} and {len(x)} (allowed: equal, non-zero lengths)")
    if loss not in ("inverse", "log"):
        raise DataError(f"Invalid loss: {loss!r} (allowed: inverse, log)")
    z = sum(wi * xi for wi, xi in zip(w, x, strict=True))
    p = 1 / (1 + math.exp(-z))
    if loss == "inverse":
        L, p_bar, rule = 1 / p, -1 / p**2, "p̄ = −1/p²"
    else:
        L, p_bar, rule = math.log(1 / p), -1 / p, "p̄ = −1/p"
    z_bar = p_bar * p * (1 - p)
    grad_w = [z_bar * xi for xi in x]
    simplified = [-(1 - p) * xi for xi in x]
    nodes = [_row("z", "wᵀx", z, z_bar, "z̄ = p̄·σ(z)(1 − σ(z))"),
             _row("p", "σ(z)", p, p_bar, rule),
             _row("L", "1/p" if loss == "inverse" else "log(1/p)", L, 1.0, "L̄ = 1")]
    tw = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    tp = torch.sigmoid(tw @ torch.tensor(x, dtype=torch.float64))
    (1 / tp if loss == "inverse" else torch.log(1 / tp)).backward()
    auto = tw.grad.tolist()
    close = lambda u, v: all(math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12) for a, b in zip(u, v, strict=True))  # noqa: E731
    return {"function": f"L = {'1/p' if loss == 'inverse' else 'log(1/p)'}, p = σ(wᵀx)", "w": w, "x": x,
            "nodes": nodes, "grad_w": grad_w, "simplified": simplified, "autograd": auto, "match": close(grad_w, auto),
            "simplified_matches": close(simplified, auto)}
