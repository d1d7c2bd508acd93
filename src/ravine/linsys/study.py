"""Solvers side by side on one system, and the κ sweep: the course's "GD is not a way to solve Ax = b".

:data:`METHODS` names every solver once; :func:`compare` runs a list of them on one
:class:`~ravine.linsys.systems.System` and returns a plain dict (JSON-ready) with each method's
residual history, iterations, time, flops and the theoretical rate beside it; :func:`kappa_sweep`
counts iterations to a tolerance over a range of κ and fits the log-log slope (GD ≈ 1, CG ≈ ½).

Example:
    >>> from ravine.linsys.systems import spd
    >>> out = compare(spd(60, kappa=50.0, seed=0), ["cholesky", "cg", "gd"], tol=1e-8)
    >>> out["methods"]["cg"]["iterations"] < out["methods"]["gd"]["iterations"]
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ravine.errors import DataError, check_int, check_range, unknown_name
from ravine.linsys import direct, iterative, rates
from ravine.linsys.result import SolveResult
from ravine.linsys.systems import System, spd


@dataclass(frozen=True)
class Method:
    """A solver by name: how to call it, what it needs, and its theoretical rate."""

    name: str
    kind: str  # "direct" or "iterative"
    needs_spd: bool
    description: str
    run: Callable[[System, float, int], SolveResult]
    rate: Callable[[System], float | None] = lambda system: None


def _kappa(system: System) -> float:
    return system.kappa


def _preconditioned_kappa(system: System, which: str) -> float:
    # eigenvalues of M⁻¹A (real and positive for SPD A and SPD M): apply M⁻¹ to A's columns
    make = iterative.jacobi_preconditioner if which == "jacobi" else iterative.ssor_preconditioner
    MA = make(system.A)(system.A.mT).mT
    lam = torch.linalg.eigvals(MA).real
    return float(lam.max() / lam.min())


def _newton(system: System, tol: float, max_iter: int) -> SolveResult:
    if "X" not in system.extra:
        raise DataError("Invalid method: 'newton' for this system (allowed: a least-squares system, "
                        "e.g. --system diabetes)")
    return iterative.newton_least_squares(system.extra["X"], system.extra["y"])


METHODS: dict[str, Method] = {m.name: m for m in [
    Method("lu", "direct", False, "LU with partial pivoting (torch.linalg.lu_factor)",
           lambda s, tol, it: direct.lu(s.A, s.b)),
    Method("qr", "direct", False, "Householder QR (torch.linalg.qr)", lambda s, tol, it: direct.qr(s.A, s.b)),
    Method("cholesky", "direct", True, "Cholesky A = LLᵀ (torch.linalg.cholesky)",
           lambda s, tol, it: direct.cholesky(s.A, s.b)),
    Method("jacobi", "iterative", False, "x ← x + D⁻¹(b − Ax)",
           lambda s, tol, it: iterative.jacobi(s.A, s.b, tol, it), lambda s: rates.jacobi_rate(s.A)),
    Method("gauss-seidel", "iterative", False, "x ← x + (D + L)⁻¹(b − Ax)",
           lambda s, tol, it: iterative.gauss_seidel(s.A, s.b, tol, it), lambda s: rates.gauss_seidel_rate(s.A)),
    Method("cg", "iterative", True, "conjugate gradients",
           lambda s, tol, it: iterative.cg(s.A, s.b, tol, it), lambda s: rates.cg_rate(_kappa(s))),
    Method("pcg", "iterative", True, "CG, Jacobi preconditioner M = diag A",
           lambda s, tol, it: iterative.pcg(s.A, s.b, tol, it, "jacobi"),
           lambda s: rates.cg_rate(_preconditioned_kappa(s, "jacobi"))),
    Method("pcg-ssor", "iterative", True, "CG, SSOR preconditioner (ω = 1)",
           lambda s, tol, it: iterative.pcg(s.A, s.b, tol, it, "ssor"),
           lambda s: rates.cg_rate(_preconditioned_kappa(s, "ssor"))),
    Method("gd", "iterative", True, "gradient descent, ε = 1/λ_max",
           lambda s, tol, it: iterative.gradient_descent(s.A, s.b, tol, it),
           lambda s: rates.gd_fixed_rate(_kappa(s))),
    Method("gd-exact", "iterative", True, "gradient descent, exact line search",
           lambda s, tol, it: iterative.gradient_descent(s.A, s.b, tol, it, line_search=True),
           lambda s: rates.gd_rate(_kappa(s))),
    Method("momentum", "iterative", True, "heavy ball, optimal ε and α for κ",
           lambda s, tol, it: iterative.heavy_ball(s.A, s.b, tol, it), lambda s: rates.cg_rate(_kappa(s))),
    Method("newton", "iterative", False, "one Newton step on ½‖Xw − y‖² (least-squares systems)",
           _newton, lambda s: 0.0),
]}

DEFAULT_METHODS = ("lu", "qr", "cholesky", "jacobi", "gauss-seidel", "cg", "pcg", "gd", "momentum")


def parse_methods(text: str | Sequence[str]) -> list[str]:
    """Split ``"lu,cg"`` into known method names (``"all"`` is every method).

    Raises:
        UnknownNameError: an unknown name, listing the known ones.
    """
    names = [t.strip() for t in text.split(",")] if isinstance(text, str) else list(text)
    names = [n for n in names if n]
    if names == ["all"]:
        return list(METHODS)
    for name in names:
        if name not in METHODS:
            raise unknown_name("method", name, METHODS)
    if not names:
        raise DataError(f"Invalid methods: {text!r} (allowed: a comma-separated list of {', '.join(METHODS)})")
    return list(dict.fromkeys(names))


def _summary(system: System, method: Method, res: SolveResult, tol: float) -> dict[str, Any]:
    try:
        rate = method.rate(system) if system.spd or method.kind == "iterative" else None
    except (RuntimeError, DataError):  # eigen-decomposition trouble: no rate, the solve still counts
        rate = None
    row: dict[str, Any] = {
        "kind": method.kind, "description": method.description, "status": res.status,
        "converged": res.converged if method.kind == "iterative" else res.final_residual <= tol,
        "iterations": res.iterations, "matvecs": res.matvecs, "time": res.time, "flops": res.flops,
        "final_residual": res.final_residual, "residuals": res.history(), "rate": rate,
        "predicted_iterations": None if rate is None else rates.iterations_to(tol, rate),
        "info": res.info,
    }
    if system.x_star is not None:
        err = torch.linalg.vector_norm(res.x - system.x_star) / torch.linalg.vector_norm(system.x_star)
        row["error"] = float(err)
    return row


def compare(system: System, methods: Sequence[str] = DEFAULT_METHODS, tol: float = 1e-8,
            max_iter: int = 20_000, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run ``methods`` on ``system``; a plain dict of the system and one row per method.

    A method that needs an SPD matrix (Cholesky, CG, PCG, GD, momentum) on a matrix that is not
    SPD gets ``{"status": "not applicable"}``, as does ``newton`` on a system without least-squares data.

    Returns:
        ``{"system": {name, n, kappa, spd, notes}, "tol", "max_iter", "methods": {name: {kind,
        description, status, converged, iterations, matvecs, time, flops, final_residual,
        residuals, rate, predicted_iterations, info, [error]}}}``.
    """
    tol = check_range("tol", tol, 0.0, 1.0, low_inclusive=False, high_inclusive=False, error=DataError)
    max_iter = check_int("max_iter", max_iter, 1, error=DataError)
    names = parse_methods(methods)
    out: dict[str, Any] = {"system": {"name": system.name, "n": system.n, "kappa": system.kappa,
                                      "spd": system.spd, "notes": system.notes},
                           "tol": tol, "max_iter": max_iter, "methods": {}}
    for name in names:
        method = METHODS[name]
        if progress is not None:
            progress(name)
        if method.needs_spd and not system.spd:
            out["methods"][name] = {"kind": method.kind, "description": method.description,
                                    "status": "not applicable", "reason": "needs a symmetric positive definite A"}
            continue
        if name == "newton" and "X" not in system.extra:
            out["methods"][name] = {"kind": method.kind, "description": method.description,
                                    "status": "not applicable", "reason": "needs a least-squares system"}
            continue
        out["methods"][name] = _summary(system, method, method.run(system, tol, max_iter), tol)
    return out


SWEEP_KAPPAS = (10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0)


def fit_slope(kappas: Sequence[float], iterations: Sequence[float]) -> float:
    """Least-squares slope of log(iterations) against log(κ).

    Example:
        >>> round(fit_slope([10, 100, 1000], [5, 50, 500]), 6)
        1.0
    """
    pts = [(math.log(k), math.log(i)) for k, i in zip(kappas, iterations, strict=True)
           if i is not None and i > 0 and math.isfinite(i)]
    if len(pts) < 2:
        return math.nan
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx


def kappa_sweep(kappas: Sequence[float] = SWEEP_KAPPAS, n: int = 400,
                methods: Sequence[str] = ("gd", "momentum", "cg"), tol: float = 1e-8, seed: int = 0,
                max_iter: int = 200_000, spectrum: str = "chebyshev", device: str | torch.device = "cpu",
                progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Iterations to ``tol`` against κ on :func:`~ravine.linsys.systems.spd` systems, and the log-log slopes.

    The course's claim: GD needs O(κ) iterations (slope 1), CG and heavy ball O(√κ) (slope ½).
    The default Chebyshev spectrum (crowded at both ends of [1, κ]) is the one where CG's bound is
    close to tight; on an evenly spaced spectrum CG does better than √κ (see :func:`spd`).
    Choose ``n`` above CG's iteration count (≈ ½√κ ln(2/τ) at most) — in exact arithmetic CG ends
    within n steps, which flattens its slope when n is small.

    Returns:
        ``{"n", "tol", "seed", "kappas", "iterations": {method: [...]}, "predicted": {method: [...]},
        "slopes": {method: float}, "expected_slopes": {method: float}}`` (iterations None = not
        converged within ``max_iter``).
    """
    iterative_names = [m for m in parse_methods(methods) if METHODS[m].kind == "iterative" and m != "newton"]
    out: dict[str, Any] = {"n": n, "tol": tol, "seed": seed, "spectrum": spectrum, "kappas": [float(k) for k in kappas],
                           "iterations": {m: [] for m in iterative_names}, "predicted": {m: [] for m in iterative_names}}
    for kappa in kappas:
        system = spd(n, kappa, seed, spectrum=spectrum, device=device)
        for name in iterative_names:
            if progress is not None:
                progress(f"κ={kappa:g} {name}")
            res = METHODS[name].run(system, tol, max_iter)
            out["iterations"][name].append(res.iterations if res.converged else None)
            rate = METHODS[name].rate(system)
            out["predicted"][name].append(None if rate is None else rates.iterations_to(tol, rate))
    out["slopes"] = {m: fit_slope(out["kappas"], its) for m, its in out["iterations"].items()}
    expected = {"gd": 1.0, "gd-exact": 1.0, "cg": 0.5, "momentum": 0.5, "pcg": 0.5, "pcg-ssor": 0.5}
    out["expected_slopes"] = {m: expected.get(m) for m in iterative_names}
    return out
