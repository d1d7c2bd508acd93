"""ravine.autodiff: gradient checks catch a wrong backward, the graph's gradients match autograd's."""

from __future__ import annotations

import math
import os
import stat

import pytest
import torch
from torch import nn

from ravine import autodiff
from ravine.errors import DataError

F64 = torch.float64


class WrongSquare(torch.autograd.Function):
    """x² with a deliberately wrong backward (3x instead of 2x)."""

    @staticmethod
    def forward(ctx, x):  # noqa: ANN001, ANN205
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):  # noqa: ANN001, ANN205
        (x,) = ctx.saved_tensors
        return 3 * x * grad


class GoodScale(torch.autograd.Function):
    """x · s with a correct backward for both inputs."""

    @staticmethod
    def forward(ctx, x, s):  # noqa: ANN001, ANN205
        ctx.save_for_backward(x, s)
        return x * s

    @staticmethod
    def backward(ctx, grad):  # noqa: ANN001, ANN205
        x, s = ctx.saved_tensors
        return grad * s, (grad * x).sum().reshape(s.shape)


class BadScale(GoodScale):
    """Correct for x, wrong for s (drops a factor 2 error in)."""

    @staticmethod
    def backward(ctx, grad):  # noqa: ANN001, ANN205
        x, s = ctx.saved_tensors
        return grad * s, 2 * (grad * x).sum().reshape(s.shape)


class ScaledMLP(nn.Module):
    def __init__(self, op: type[torch.autograd.Function]) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.lin = nn.Linear(4, 3)
        with torch.no_grad():
            self.lin.weight.copy_(torch.randn(3, 4, generator=g))
        self.scale = nn.Parameter(torch.tensor([1.5]))
        self.op = op

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op.apply(torch.tanh(self.lin(x)), self.scale)


def _data(n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 4, generator=g), torch.randn(n, 3, generator=g)


def test_gradcheck_passes_a_correct_model_and_leaves_it_untouched() -> None:
    model = ScaledMLP(GoodScale)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    res = autodiff.gradcheck(model, nn.functional.mse_loss, _data())
    assert res.passed
    assert [t.name for t in res.tensors] == ["scale", "lin.weight", "lin.bias"]
    assert all(t.max_abs_error < 1e-8 for t in res.tensors)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]) and v.dtype == torch.float32


def test_gradcheck_fails_exactly_the_tensor_with_the_wrong_backward() -> None:
    res = autodiff.gradcheck(ScaledMLP(BadScale), nn.functional.mse_loss, _data())
    verdict = {t.name: t.passed for t in res.tensors}
    assert verdict == {"scale": False, "lin.weight": True, "lin.bias": True}
    bad = next(t for t in res.tensors if t.name == "scale")
    # the backward doubles ∂L/∂s: autograd says 2·fd at the worst coordinate
    assert bad.worst_autograd == pytest.approx(2 * bad.worst_fd, rel=1e-6)
    assert not res.passed


def test_gradcheck_function_on_a_custom_function() -> None:
    x = torch.randn(5, generator=torch.Generator().manual_seed(0))
    s = torch.tensor([0.7])
    assert autodiff.gradcheck_function(GoodScale, [x, s]).passed
    res = autodiff.gradcheck_function(BadScale, [x, s])
    assert [t.passed for t in res.tensors] == [True, False]
    wrong = autodiff.gradcheck_function(WrongSquare, [x])
    assert not wrong.passed
    # 3x vs 2x: the relative error is |3x − 2x| / |3x| = 1/3 at every coordinate
    assert wrong.tensors[0].max_rel_error == pytest.approx(1 / 3, rel=1e-5)
    assert autodiff.gradcheck_function(lambda a: torch.sin(a) * a, [x]).passed


def test_large_tensors_use_a_seeded_subset() -> None:
    model = nn.Linear(50, 40)
    data = (torch.randn(8, 50), torch.randn(8, 40))
    a = autodiff.gradcheck(model, nn.functional.mse_loss, data, max_coords=15, seed=3)
    b = autodiff.gradcheck(model, nn.functional.mse_loss, data, max_coords=15, seed=3)
    weight = a.tensors[0]
    assert weight.checked in (14, 15) and weight.passed
    assert a.to_dict() == b.to_dict()
    with pytest.raises(DataError, match="eps"):
        autodiff.gradcheck(model, nn.functional.mse_loss, data, eps=0.0)


def test_graph_gradients_match_autograd_and_paths_are_summed() -> None:
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).to(F64)
    X, y = torch.randn(6, 3, dtype=F64), torch.randn(6, 2, dtype=F64)
    ref = torch.autograd.grad(nn.functional.mse_loss(net(X), y), list(net.parameters()))
    g = autodiff.graph(net, nn.functional.mse_loss, (X, y))
    for (name, _), gr in zip(net.named_parameters(), ref, strict=True):
        assert g.parameter_norms[name] == pytest.approx(float(gr.norm()), rel=1e-12)
    assert all(p.grad is None for p in net.parameters())  # .grad left as it was
    assert [row["layer"] for row in g.layer_norms] == ["0", "1", "2"]
    # the edge into each parameter carries that parameter's gradient
    params = {n.id: n.parameter for n in g.nodes if n.parameter}
    into = {params[e.target]: e.grad_norm for e in g.edges if e.target in params and "weight" not in params[e.target]}
    assert into["0.bias"] == pytest.approx(g.parameter_norms["0.bias"], rel=1e-12)

    # w used twice (w·w): two edges into w, each carrying w·ḡ, summed to 2w
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.tensor([3.0], dtype=F64))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.w * self.w * x

    g2 = autodiff.graph(Twice(), lambda out, y: out.sum(), (torch.ones(1, dtype=F64), None))
    wnode = next(n for n in g2.nodes if n.parameter == "w")
    assert wnode.fan_in == 2
    edges = [e.grad_norm for e in g2.edges if e.target == wnode.id]
    assert edges == [pytest.approx(3.0), pytest.approx(3.0)]
    assert wnode.output_grad_norm == pytest.approx(6.0)  # ∂(w²)/∂w = 2w
    assert "sum of 2 paths" in g2.to_text()


def test_graph_renders_text_without_dot_and_svg_with_it(tmp_path, monkeypatch) -> None:
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    g = autodiff.graph(net, nn.functional.mse_loss, (torch.randn(3, 2), torch.randn(3, 1)))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    path = g.render(tmp_path / "g")
    assert path.suffix == ".txt"
    for name in ("0.weight", "0.bias", "2.weight", "2.bias", "loss ="):
        assert name in path.read_text()
    assert (tmp_path / "g.dot").read_text().startswith("digraph")
    # a stand-in `dot` that writes its -o argument: the SVG path is taken when dot exists
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "dot"
    fake.write_text('#!/bin/sh\nwhile [ "$1" != "-o" ]; do shift; done\necho "<svg/>" > "$2"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    assert g.render(tmp_path / "h").suffix == ".svg"


def test_course_example_is_the_closed_form() -> None:
    x1, x2 = 1.5, -0.7
    ex = autodiff.course_example(x1, x2)
    rows = {r["node"]: r for r in ex["nodes"]}
    assert rows["f"]["value"] == pytest.approx(x1 * x2 + math.sin(x2))
    assert rows["x1"]["adjoint"] == pytest.approx(x2)
    assert rows["x2"]["adjoint"] == pytest.approx(x1 + math.cos(x2))  # both paths
    assert ex["match"]


def test_sigmoid_example_gradients() -> None:
    w, x = [0.3, -1.2, 0.5], [2.0, 0.5, -1.0]
    z = sum(a * b for a, b in zip(w, x, strict=True))
    s = 1 / (1 + math.exp(-z))
    inv = autodiff.sigmoid_example(w, x, loss="inverse")
    assert inv["match"] and not inv["simplified_matches"]
    assert inv["grad_w"] == pytest.approx([-(1 - s) / s * xi for xi in x])
    log = autodiff.sigmoid_example(w, x, loss="log")
    assert log["match"] and log["simplified_matches"]
    assert log["autograd"] == pytest.approx([-(1 - s) * xi for xi in x])
    with pytest.raises(DataError):
        autodiff.sigmoid_example([1.0], [1.0, 2.0])
