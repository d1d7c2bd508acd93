"""``ravine linsys`` in a subprocess: outputs, piped and under a real terminal, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from ravine.cli import app

ENV = {**os.environ, "RAVINE_NUM_THREADS": "1"}


def _ravine(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ravine", *args], capture_output=True, text=True, timeout=300,
                          env=env or ENV)


def test_linsys_writes_json_and_report(tmp_path) -> None:
    out = tmp_path / "run"
    proc = _ravine("linsys", "--n", "60", "--kappa", "50", "--methods", "lu,cholesky,cg,gd,momentum",
                   "--sweep-kappas", "10,40", "--sweep-n", "60", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    data = json.loads((out / "linsys.json").read_text())
    assert set(data["methods"]) == {"lu", "cholesky", "cg", "gd", "momentum"}
    assert data["system"]["kappa"] == pytest.approx(50.0)
    assert data["methods"]["cg"]["converged"] and data["methods"]["cg"]["residuals"][-1] <= 1e-8
    assert set(data["sweep"]["slopes"]) == {"gd", "momentum", "cg"}
    assert "data:image/png;base64," in (out / "report.html").read_text()
    assert "momentum" in proc.stdout and "slope" in proc.stdout
    assert "…" not in proc.stdout  # piped: nothing cut


def test_linsys_user_matrix(tmp_path) -> None:
    rng = np.random.default_rng(0)
    M = rng.uniform(-1, 1, (20, 20))
    np.fill_diagonal(M, 30.0)
    np.save(tmp_path / "m.npy", M)
    result = CliRunner().invoke(app, ["linsys", "--matrix", str(tmp_path / "m.npy"), "--methods", "lu,jacobi,cg",
                                      "--sweep-kappas", "none", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "o" / "linsys.json").read_text())
    assert data["methods"]["cg"]["status"] == "not applicable"  # M is not symmetric
    assert data["methods"]["jacobi"]["converged"]


def test_linsys_bad_input_is_one_line_and_exit_2(tmp_path) -> None:
    proc = _ravine("linsys", "--methods", "lu,nope", "--out", str(tmp_path / "o"))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "nope" in proc.stderr and "cholesky" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args", [["--kappa", "0.5"], ["--matrix", "/no/such.npy"], ["--system", "hilbert"],
                                  ["--sweep-kappas", "a,b"], ["--n", "1"], ["--tol", "0"], ["--device", "tpu"],
                                  ["--n", "1000000000"], ["--sweep-n", "100000000"]])
def test_linsys_bad_values_exit_2(tmp_path, args) -> None:
    result = CliRunner().invoke(app, ["linsys", *args, "--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    assert "Invalid" in result.output or "unknown" in result.output



def test_a_huge_n_is_refused_by_name_before_any_allocation(tmp_path) -> None:
    # 10⁹ rows would ask the allocator for 8·10¹⁸ bytes: once an 'internal error', exit 1
    result = CliRunner().invoke(app, ["linsys", "--n", "1000000000", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    assert "Invalid n: 1000000000 (allowed: integer in [2, 20000])" in result.output
    assert "internal error" not in result.output and not (tmp_path / "o").exists()
