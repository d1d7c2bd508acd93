"""``ravine linsys``: solvers for A x = b side by side, residual vs iteration, and the κ sweep."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from ravine.commands.common import (DebugOpt, DeviceOpt, OutOpt, SeedOpt, console, guard, out_dir, print_table,
                                    plain_line)

SYSTEMS = ("spd", "diag-dominant", "poisson", "diabetes", "diabetes-qr")
# The generated systems are dense float64 n×n matrices (3.2 GB at 20 000) and LU / QR / Cholesky copy them:
# a larger --n is a typo (an extra zero), better refused by name than met by the allocator's internal error.
MAX_N = 20_000


def linsys(
    kappa: Annotated[float, typer.Option("--kappa", help="Condition number κ of the spd system.")] = 1e3,
    n: Annotated[int, typer.Option("--n", help="Size of the generated system.")] = 500,
    methods: Annotated[str, typer.Option(
        "--methods", help="Comma-separated: lu, qr, cholesky, jacobi, gauss-seidel, cg, pcg, pcg-ssor, gd, "
                          "gd-exact, momentum, newton; or all.")] = "lu,qr,cholesky,jacobi,gauss-seidel,cg,pcg,gd,momentum",
    system: Annotated[str, typer.Option(
        "--system", help="spd (κ, n), diag-dominant (n), poisson (1-D, n), diabetes (normal equations), "
                         "diabetes-qr (R w = Qᵀy).")] = "spd",
    spectrum: Annotated[str, typer.Option("--spectrum", help="spd eigenvalues: linear or chebyshev.")] = "linear",
    matrix: Annotated[Path | None, typer.Option(
        "--matrix", help="Your matrix: .npy, .npz (A [, b] or scipy sparse) or .mtx; overrides --system.")] = None,
    tol: Annotated[float, typer.Option("--tol", help="Relative residual to stop at.")] = 1e-8,
    max_iter: Annotated[int, typer.Option("--max-iter", help="Iteration limit of each iterative method.")] = 20_000,
    sweep_kappas: Annotated[str, typer.Option(
        "--sweep-kappas", help="κ values of the sweep, comma-separated; 'none' skips it.")] = "10,30,100,300,1000",
    sweep_n: Annotated[int, typer.Option("--sweep-n", help="System size in the κ sweep.")] = 600,
    out: OutOpt = None,
    seed: SeedOpt = 0,
    device: DeviceOpt = "cpu",
    debug: DebugOpt = False,
) -> None:
    """Solve A x = b with direct and iterative methods side by side; writes DIR/linsys.json and DIR/report.html.

    The report shows the relative residual against iteration (log axis) with each method's theoretical rate,
    a table of iterations / time / final residual, and the κ sweep: iterations to --tol against κ (log-log)
    for gd, momentum and cg on Chebyshev-spectrum SPD systems, with the fitted slopes (course: GD 1, CG ½).

    linsys.json: {system: {name, n, kappa, spd, notes}, tol, max_iter, seed, device, methods: {name: {kind,
    description, status, converged, iterations, matvecs, time, flops, final_residual, residuals (relative,
    per iteration), rate, predicted_iterations, info, error (‖x − x*‖/‖x*‖ when x* is known)}}, sweep: {n,
    tol, spectrum, kappas, iterations: {method: [...]}, predicted: {method: [...]}, slopes: {method: p},
    expected_slopes} or null}.
    """
    guard(debug, _run, kappa, n, methods, system, spectrum, matrix, tol, max_iter, sweep_kappas, sweep_n, out, seed,
          device)


def _parse_kappas(text: str) -> list[float]:
    from ravine.errors import DataError, check_range

    if text.strip().lower() in ("", "none"):
        return []
    try:
        values = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise DataError(f"Invalid sweep-kappas: {text!r} (allowed: comma-separated numbers >= 1, or none)") from None
    return [check_range("sweep-kappas", v, 1.0, error=DataError) for v in values]


def _build(system: str, matrix: Path | None, n: int, kappa: float, spectrum: str, seed: int, device: Any) -> Any:
    from ravine import linsys as ls
    from ravine.errors import unknown_name

    if matrix is not None:
        return ls.load_matrix(matrix, seed, device=device)
    builders = {
        "spd": lambda: ls.spd(n, kappa, seed, spectrum=spectrum, device=device),
        "diag-dominant": lambda: ls.diagonally_dominant(n, seed, device=device),
        "poisson": lambda: ls.poisson1d(n, device=device, seed=seed),
        "diabetes": lambda: ls.least_squares_normal(device=device),
        "diabetes-qr": lambda: ls.least_squares_qr(device=device),
    }
    if system not in builders:
        raise unknown_name("system", system, builders)
    return builders[system]()


def _run(kappa: float, n: int, methods: str, system: str, spectrum: str, matrix: Path | None, tol: float,
         max_iter: int, sweep_kappas: str, sweep_n: int, out: Path | None, seed: int, device: str) -> None:
    from ravine.errors import DataError, check_int, check_range
    from ravine.linsys import report, study
    from ravine.utils import resolve_device, write_json

    dev = resolve_device(device)
    check_int("seed", seed, 0, error=DataError)
    check_int("n", n, 2, MAX_N, error=DataError)
    check_range("kappa", kappa, 1.0, error=DataError)
    names = study.parse_methods(methods)
    kappas = _parse_kappas(sweep_kappas)
    check_int("sweep-n", sweep_n, 2, MAX_N, error=DataError)
    path = out_dir(out, "linsys")  # checked (and locked) before any work
    sys_ = _build(system, matrix, n, kappa, spectrum, seed, dev)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("linsys", total=None)
        result = study.compare(sys_, names, tol, max_iter,
                               progress=lambda m: bar.update(task, description=f"solving: {m}"))
        sweep = study.kappa_sweep(kappas, sweep_n, tol=tol, seed=seed, device=dev,
                                  progress=lambda m: bar.update(task, description=f"κ sweep: {m}")) if kappas else None
    result.update(seed=seed, device=str(dev), sweep=sweep)
    write_json(path / "linsys.json", result)
    report.write_report(path, result, sweep)
    _print(result, sweep)
    plain_line(f"wrote {path / 'linsys.json'} and {path / 'report.html'}")


def _fmt(v: Any, spec: str) -> str:
    return "—" if v is None else format(v, spec)


def _print(result: dict[str, Any], sweep: dict[str, Any] | None) -> None:
    s = result["system"]
    # one-word headers: the shared table never wraps a number column's header
    columns = [("method", "name"), ("status", "name"), ("iters", "num"), ("seconds", "num"), ("residual", "num"),
               ("ρ", "num"), ("predicted", "num")]
    rows = [[name, r["status"], _fmt(r.get("iterations"), "d"), _fmt(r.get("time"), ".3g"),
             _fmt(r.get("final_residual"), ".2e"), _fmt(r.get("rate"), ".6g"), _fmt(r.get("predicted_iterations"), ".0f")]
            for name, r in result["methods"].items()]
    notes = ["residual: ‖b − Ax‖/‖b‖; ρ: the theoretical rate (contraction per iteration); "
             "predicted: the iterations it predicts, ln tol / ln ρ"]
    if sweep:
        notes.append("κ sweep, slope of log iterations vs log κ: " + ", ".join(
            f"{m} {v:.2f} (course {sweep['expected_slopes'].get(m)})" for m, v in sweep["slopes"].items()))
    print_table(f"{s['name']}  κ = {s['kappa']:.4g}, tol {result['tol']:g}", columns, rows, notes)
