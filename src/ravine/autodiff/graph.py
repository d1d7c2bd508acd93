"""The backward graph of a loss: each ``grad_fn`` node, its shapes, and the gradient on every edge.

Starting from ``loss.grad_fn`` and following ``next_functions``, every node of autograd's graph is
visited once and given a hook (``torch.autograd.graph.Node.register_hook``) that records, during one
``backward()``, the gradients flowing out of it to each of its inputs. An edge u → v carries u's
gradient with respect to v's output; when several edges enter v (a value used twice), autograd sums
them — the course's "gradients from several paths are added". ``AccumulateGrad`` nodes are the
parameters (named from ``model.named_parameters()``).

Considered: torchviz (``make_dot``) draws the same graph but shows no gradient values, depends on
the ``graphviz`` Python package and is barely maintained. Here the DOT text is written directly and
rendered with the ``dot`` program when it is on PATH (Debian/Ubuntu: ``apt install graphviz``;
macOS: ``brew install graphviz``); otherwise :meth:`BackwardGraph.to_text` gives a readable tree.

Example:
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    >>> g = graph(net, torch.nn.functional.mse_loss, (torch.randn(5, 3), torch.randn(5, 1)))
    >>> sorted(g.parameter_norms)
    ['0.bias', '0.weight', '2.bias', '2.weight']
"""

from __future__ import annotations

import html
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ravine.utils import atomic_write_bytes


@dataclass
class Node:
    """One node of the backward graph.

    Attributes:
        id: position in discovery order (0 is the loss's ``grad_fn``).
        op: the backward node's class, e.g. ``AddmmBackward0``, ``AccumulateGrad``.
        output_shapes: shapes of the gradients arriving at the node (= its forward outputs' shapes).
        output_grad_norm: ‖∂L/∂output‖, the total gradient arriving (summed over incoming paths).
        parameter: the parameter's name for an ``AccumulateGrad`` node, else None.
        fan_in: how many edges enter the node (> 1: gradients from several paths are summed).
    """

    id: int
    op: str
    output_shapes: list[list[int]] = field(default_factory=list)
    output_grad_norm: float | None = None
    parameter: str | None = None
    fan_in: int = 0


@dataclass
class Edge:
    """Gradient flowing from node ``source`` to its input node ``target`` (shape and norm)."""

    source: int
    target: int
    shape: list[int] | None
    grad_norm: float | None


@dataclass
class BackwardGraph:
    """The backward graph, with per-parameter and per-layer gradient norms.

    Attributes:
        loss: the loss value.
        nodes, edges: the graph.
        parameter_norms: ‖∂L/∂θ‖ per parameter tensor, in the model's order.
        layer_norms: per leaf module (in forward order), ‖∂L/∂(module output)‖ and the norm of
            its parameters' gradients — the gradient flow from L back through the layers.
    """

    loss: float
    nodes: list[Node]
    edges: list[Edge]
    parameter_norms: dict[str, float]
    layer_norms: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """A plain dict for JSON."""
        return {"loss": self.loss, "nodes": [vars(n) for n in self.nodes], "edges": [vars(e) for e in self.edges],
                "parameter_norms": self.parameter_norms, "layer_norms": self.layer_norms}

    def _label(self, node: Node) -> str:
        shape = " ".join("×".join(map(str, s)) or "scalar" for s in node.output_shapes)
        name = node.parameter or node.op
        return f"{name} [{shape}]" if shape else name

    def to_text(self) -> str:
        """The graph as an indented tree from the loss; a node reached again is referenced by its id."""
        children: dict[int, list[Edge]] = {n.id: [] for n in self.nodes}
        for e in self.edges:
            children[e.source].append(e)
        lines = [f"loss = {self.loss:.6g}"]
        seen: set[int] = set()

        def visit(node_id: int, depth: int, via: Edge | None) -> None:
            node = self.nodes[node_id]
            arrow = "" if via is None else f"←‖g‖={_num(via.grad_norm)}  "
            summed = f"  (sum of {node.fan_in} paths)" if node.fan_in > 1 else ""
            if node_id in seen:
                lines.append(f"{'  ' * depth}{arrow}#{node_id} {self._label(node)} (see above)")
                return
            seen.add(node_id)
            lines.append(f"{'  ' * depth}{arrow}#{node_id} {self._label(node)}{summed}")
            for e in children[node_id]:
                visit(e.target, depth + 1, e)

        if self.nodes:
            visit(0, 0, None)
        return "\n".join(lines) + "\n"

    def to_dot(self) -> str:
        """The graph in Graphviz DOT: parameters as blue boxes, edges labelled with ‖gradient‖."""
        out = ["digraph backward {", '  rankdir=BT; node [shape=box, fontname="Helvetica", fontsize=10];',
               '  edge [fontname="Helvetica", fontsize=9];',
               f'  loss [label="loss = {self.loss:.4g}", shape=ellipse, style=filled, fillcolor="#ffe0e0"];']
        for n in self.nodes:
            style = ', style=filled, fillcolor="#dbe9ff"' if n.parameter else ""
            out.append(f'  n{n.id} [label="{html.escape(self._label(n))}"{style}];')
        if self.nodes:
            out.append("  n0 -> loss;")
        for e in self.edges:  # drawn in the forward direction, labelled with the backward gradient
            out.append(f'  n{e.target} -> n{e.source} [label="{_num(e.grad_norm)}"];')
        out.append("}")
        return "\n".join(out) + "\n"

    def render(self, path: str | Path) -> Path:
        """Write ``path.svg`` with Graphviz's ``dot`` when installed, else ``path.txt``; returns the file.

        ``path.dot`` is written in both cases.
        """
        base = Path(path)
        dot_file = base.with_suffix(".dot")
        atomic_write_bytes(dot_file, self.to_dot().encode())
        exe = shutil.which("dot")
        if exe is not None:
            svg = base.with_suffix(".svg")
            proc = subprocess.run([exe, "-Tsvg", str(dot_file), "-o", str(svg)], capture_output=True, timeout=120)
            if proc.returncode == 0 and svg.is_file():
                return svg
        txt = base.with_suffix(".txt")
        atomic_write_bytes(txt, self.to_text().encode())
        return txt


def _num(v: float | None) -> str:
    return "–" if v is None else f"{v:.3g}"


def _nodes_from(root: Any) -> list[Any]:
    order, index, stack = [], {}, [root]
    while stack:  # iterative DFS: deep networks would overflow Python's recursion
        fn = stack.pop()
        if fn is None or fn in index:
            continue
        index[fn] = len(order)
        order.append(fn)
        stack.extend(reversed([nxt for nxt, _ in fn.next_functions]))
    return order


def graph(model: nn.Module, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
          data: tuple[torch.Tensor, torch.Tensor]) -> BackwardGraph:
    """Run forward and backward once and record the backward graph with the gradient on every edge.

    The model's ``.grad`` fields are left untouched (gradients are taken with a fresh graph and
    ``torch.autograd.grad``-like bookkeeping through hooks; the parameters' own ``.grad`` is restored).

    Args:
        model: the network (its mode — train / eval — is used as is).
        loss_fn: ``loss_fn(model(X), y) -> scalar``.
        data: a batch ``(X, y)``.
    """
    names = {id(p): n for n, p in model.named_parameters()}
    leaf_modules = [(n, m) for n, m in model.named_modules() if not list(m.children()) and n]
    flow: list[dict[str, Any]] = []
    handles = []

    def forward_hook(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            if isinstance(output, torch.Tensor) and output.requires_grad:
                row: dict[str, Any] = {"layer": name, "module": type(module).__name__,
                                       "output_shape": list(output.shape), "output_grad_norm": None}
                flow.append(row)
                output.register_hook(lambda g: row.__setitem__("output_grad_norm", float(g.norm())))
        return hook

    for name, module in leaf_modules:
        handles.append(module.register_forward_hook(forward_hook(name)))
    saved = {id(p): p.grad for p in model.parameters()}
    try:
        X, y = data
        loss = loss_fn(model(X), y)
        fns = _nodes_from(loss.grad_fn)
        idx = {fn: i for i, fn in enumerate(fns)}
        nodes = [Node(i, type(fn).__name__) for i, fn in enumerate(fns)]
        edges: list[Edge] = []
        for fn in fns:
            for nxt, _ in fn.next_functions:
                if nxt is not None:
                    nodes[idx[nxt]].fan_in += 1
            if hasattr(fn, "variable"):
                nodes[idx[fn]].parameter = names.get(id(fn.variable), "input")
        for fn in fns:
            def hook(grad_inputs: Any, grad_outputs: Any, fn: Any = fn) -> None:
                node = nodes[idx[fn]]
                outs = [g for g in grad_outputs if g is not None]
                node.output_shapes = [list(g.shape) for g in outs]
                node.output_grad_norm = float(torch.sqrt(sum((g.double() ** 2).sum() for g in outs))) if outs else None
                for (nxt, _), g in zip(fn.next_functions, grad_inputs, strict=False):
                    if nxt is not None:
                        edges.append(Edge(idx[fn], idx[nxt], None if g is None else list(g.shape),
                                          None if g is None else float(g.norm())))
            handles.append(fn.register_hook(hook))
        for p in model.parameters():
            p.grad = None
        loss.backward()
        param_norms = {n: float(p.grad.norm()) for n, p in model.named_parameters() if p.grad is not None}
    finally:
        for h in handles:
            h.remove()
        for p in model.parameters():
            p.grad = saved[id(p)]
    for row in flow:  # per layer: also the norm of the layer's own parameter gradients
        own = [v for n, v in param_norms.items() if n.rsplit(".", 1)[0] == row["layer"]]
        row["param_grad_norm"] = float(sum(v * v for v in own) ** 0.5) if own else None
    edges.sort(key=lambda e: (e.source, e.target))
    return BackwardGraph(float(loss.detach()), nodes, edges, param_norms, flow)
