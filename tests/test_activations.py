"""The measured activation table against closed forms (never against times)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from ravine import activations as act
from ravine.cli import app
from ravine.errors import DataError, UnknownNameError
from ravine.models import ACTIVATIONS

N = 100_000
SE = 4 / math.sqrt(N)  # four standard errors of a mean of a variable bounded by ~1


def Phi(x: float) -> float:  # noqa: N802 - the normal CDF's usual name
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def phi(x: float) -> float:
    return math.exp(-x * x / 2) / math.sqrt(2 * math.pi)


@pytest.fixture(scope="module")
def rows() -> dict[str, act.ActivationStats]:
    return {r.name: r for r in act.table(samples=N, repeats=1, time_size=1000, seed=0)}


def test_every_registry_activation_is_measured(rows) -> None:
    assert set(rows) == set(ACTIVATIONS)
    assert rows["relu"].time_relative == pytest.approx(1.0)


def test_sigmoid(rows) -> None:
    r = rows["sigmoid"]
    assert r.max_derivative == pytest.approx(0.25, abs=1e-12) and r.argmax_derivative == 0.0  # σ′ ≤ ¼, at 0
    assert 0 <= r.range_min < 1e-20 and 1 - 1e-12 < r.range_max <= 1
    assert r.mean_normal == pytest.approx(0.5, abs=SE)  # σ(x) − ½ is odd: not zero-centred
    # |σ′(x)| < 0.01 ⇔ |x| > x0 with σ(x0)(1 − σ(x0)) = 0.01
    p = (1 + math.sqrt(1 - 0.04)) / 2
    x0 = math.log(p / (1 - p))
    assert r.saturation_5 == pytest.approx(2 * Phi(-x0 / 5), abs=SE)
    assert r.saturation_1 == pytest.approx(2 * Phi(-x0), abs=SE)
    assert r.dead_fraction == 0.0


def test_tanh(rows) -> None:
    r = rows["tanh"]
    assert r.mean_normal == pytest.approx(0.0, abs=SE)  # odd function: zero-centred
    assert r.max_derivative == pytest.approx(1.0) and r.argmax_derivative == 0.0
    assert r.range_min == pytest.approx(-1.0) and r.range_max == pytest.approx(1.0)
    x0 = math.acosh(10.0)  # 1 − tanh² = sech² < 0.01 ⇔ cosh > 10
    assert r.saturation_5 == pytest.approx(2 * Phi(-x0 / 5), abs=SE)


def test_relu_and_leaky(rows) -> None:
    r = rows["relu"]
    assert r.dead_fraction == pytest.approx(Phi(2.0), abs=SE)  # f′ = 0 exactly below 0; x ~ N(−2, 1)
    assert r.saturation_1 == pytest.approx(0.5, abs=SE) and r.saturation_5 == pytest.approx(0.5, abs=SE)
    assert r.mean_normal == pytest.approx(1 / math.sqrt(2 * math.pi), abs=SE)
    assert (r.range_min, r.range_max) == (0.0, 50.0)
    lk = rows["leaky-relu"]
    assert lk.dead_fraction == 0.0 and lk.saturation_5 == 0.0
    assert lk.range_min == pytest.approx(-0.5)  # 0.01 · (−50)
    assert rows["prelu"].range_min == pytest.approx(-12.5)  # slope 0.25 at init


def test_elu_and_gelu(rows) -> None:
    e = rows["elu"]
    # E[elu(x)] = E[x; x > 0] + E[e^x − 1; x < 0] = φ(0) + e^{½} Φ(−1) − ½
    assert e.mean_normal == pytest.approx(phi(0) + math.exp(0.5) * Phi(-1) - 0.5, abs=SE)
    assert e.range_min == pytest.approx(-1.0, abs=1e-12) and e.dead_fraction == 0.0
    assert e.saturation_5 == pytest.approx(Phi(math.log(0.01) / 5), abs=SE)  # e^x < 0.01 ⇔ x < ln 0.01
    g = rows["gelu"]
    assert g.mean_normal == pytest.approx(1 / (2 * math.sqrt(math.pi)), abs=SE)  # E[x Φ(x)]
    # GELU′ = Φ(x) + x φ(x) peaks where φ(x)(2 − x²) = 0: x = √2
    assert g.max_derivative == pytest.approx(Phi(math.sqrt(2)) + math.sqrt(2) * phi(math.sqrt(2)), rel=1e-6)
    assert g.argmax_derivative == pytest.approx(math.sqrt(2), abs=1e-3)
    lo, hi = -2.0, 0.0  # GELU's minimum: x Φ(x) is least where Φ(x) + x φ(x) = 0 (bisection)
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if Phi(mid) + mid * phi(mid) < 0 else (lo, mid)
    assert g.range_min == pytest.approx(lo * Phi(lo), abs=1e-6)


def test_bad_input() -> None:
    with pytest.raises(UnknownNameError, match="gelu"):
        act.measure("swish")
    with pytest.raises(DataError, match="samples"):
        act.measure("relu", samples=1)
    assert len(act.figure(["relu", "tanh", "gelu"]).axes) == 3


def test_command_piped_in_a_subprocess(tmp_path) -> None:
    proc = subprocess.run([sys.executable, "-m", "ravine", "activations", "--samples", "2000", "--repeats", "1",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "RAVINE_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "activations.json").read_text())
    assert [r["name"] for r in data["rows"]] == list(ACTIVATIONS)
    assert (tmp_path / "activations.png").read_bytes()[:4] == b"\x89PNG"
    assert "…" not in proc.stdout  # no digit cut at 80 columns
    row = next(r for r in data["rows"] if r["name"] == "sigmoid")
    assert f"{row['max_derivative']:.4f}" in proc.stdout


def test_command_bad_input_exit_2(tmp_path) -> None:
    for args in (["--names", "swish"], ["--samples", "5"], ["--repeats", "0"], ["--device", "tpu"]):
        result = CliRunner().invoke(app, ["activations", *args, "--out", str(tmp_path)])
        assert result.exit_code == 2, (args, result.output)
