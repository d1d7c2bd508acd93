"""``ravine bench NAME``: run a benchmark suite side by side with its peers and write ``NAME.json``."""

from __future__ import annotations

import importlib
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ravine.commands.common import (DebugOpt, DeviceOpt, OutOpt, SeedOpt, console, guard, out_dir, print_table,
                                    plain_line)
from ravine.errors import unknown_name

MethodOpt = Annotated[str, typer.Option("--method", help="lm, gn, levenberg, or all (the three ravine methods).")]
ProblemsOpt = Annotated[
    str | None, typer.Option("--problems", help="Comma-separated subset of the suite's problems, e.g. Misra1a,Thurber (default: all).")
]


def bench(
    name: Annotated[str, typer.Argument(help="Suite name: nist.")],
    method: MethodOpt = "lm",
    out: OutOpt = None,
    seed: SeedOpt = 0,
    device: DeviceOpt = "cpu",
    problems: ProblemsOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Run a benchmark suite; writes DIR/NAME.json and prints a summary table.

    [bold]nist[/]: the 27 NIST StRD nonlinear regression problems from both starting points in float64, with ravine's least-squares method (--method) and, side by side, scipy.optimize.least_squares(method="lm") with finite differences (scipy-lm-fd) and with ravine's exact Jacobian (scipy-lm-exact); the same tolerances for all.

    nist.json: {suite, method, seed, device, dtype, tolerances, solvers, runs, summary, wall_time}. Each of runs: {problem, start, difficulty, solver, n_params, n_obs, lre_params, lre_per_param, lre_rss, solved (lre_params >= 6), time, params, rss, nfev, calls, njev, nit, success, status, message}; nfev is the solver's own count (SciPy's leaves out finite-difference evaluations), calls counts every residual evaluation. summary, per solver: {runs, solved, median_nfev, median_calls, median_njev, time, unsolved}. LRE = correct significant digits against the certified values, capped at 11.
    """
    guard(debug, _run, name, method, out, seed, device, problems)


def _run(name: str, method: str, out: Any, seed: int, device: str, problems: str | None) -> None:
    from ravine.bench import SUITES
    from ravine.utils import resolve_device, write_json

    if name not in SUITES:
        raise unknown_name("benchmark", name, SUITES)
    suite = importlib.import_module(SUITES[name])
    if method not in suite.METHOD_SOLVERS:
        raise unknown_name("method", method, suite.METHOD_SOLVERS)
    resolve_device(device)
    chosen = [suite.load(p.strip()).name for p in problems.split(",") if p.strip()] if problems else suite.names()
    total = len(chosen) * 2 * len(suite.METHOD_SOLVERS[method])
    path = out_dir(out, "bench")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(f"bench {name}", total=total)
        result = suite.run(method, problems=chosen, seed=seed, device=device,
                           progress=lambda label: bar.update(task, advance=1, description=label))
    write_json(path / f"{name}.json", result)
    _print_summary(result)
    plain_line(f"wrote {path / f'{name}.json'} ({result['wall_time']:.1f} s)")


def _print_summary(result: dict[str, Any]) -> None:
    columns = [("solver", "name"), ("LRE≥6", "num"), ("nfev", "num"), ("calls", "num"), ("njev", "num"),
               ("wall s", "num")]
    rows = [[solver, f"{row['solved']}/{row['runs']}", f"{row['median_nfev']}", f"{row['median_calls']}",
             f"{row['median_njev']}", f"{row['time']:.1f}"] for solver, row in result["summary"].items()]
    print_table(f"ravine bench {result['suite']} ({result['method']})", columns, rows,
                ["LRE≥6: runs with at least 6 correct digits in every parameter; nfev, calls, njev: medians over "
                 "the runs (calls include finite differences); wall s: total seconds of the solver"])
    for solver, row in result["summary"].items():
        if row["unsolved"]:
            console.print(f"{solver} below 6 digits: {', '.join(row['unsolved'])}", highlight=False)
