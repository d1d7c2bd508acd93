"""``ravine trajectories``: optimizers on a 2-D test function, from one start, over its contours."""

from __future__ import annotations

import math
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from ravine.commands.common import DebugOpt, DeviceOpt, OutOpt, SeedOpt, console, guard, out_dir, plain_line
from ravine.errors import ConfigError


def _start(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        x, y = (float(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        raise ConfigError(f"Invalid --start: {text!r} (allowed: two numbers 'x,y', e.g. --start=-1.2,1)") from None
    return x, y


def _fmt(v: Any, spec: str = ".3g") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return format(v, spec) if isinstance(v, float) else str(v)


def trajectories(
    function: Annotated[str, typer.Option(help="Test function: rosenbrock, beale, himmelblau, saddle, "
                                               "monkey-saddle, quadratic, six-hump-camel, rastrigin.")]
    = "rosenbrock",
    optimizers: Annotated[str, typer.Option(help="Comma list of optimizer names (see `ravine optimizers`); "
                                                 "least-squares ones (gn, lm, levenberg) need rosenbrock, beale, "
                                                 "himmelblau or quadratic.")] = "gd,momentum,adam,newton,lm",
    start: Annotated[str | None, typer.Option(help="Common start 'x,y' (default: the function's; write "
                                                   "--start=-1.2,1 for a negative x).")] = None,
    steps: Annotated[int, typer.Option(help="Optimizer steps for each.")] = 300,
    lr: Annotated[str | None, typer.Option(help="Learning rate for all ('0.01') or per optimizer "
                                                "('gd=0.001,adam=0.05'); default: the function's table "
                                                "(first order), 1 (second order).")] = None,
    kappa: Annotated[float, typer.Option(help="Condition number κ of the quadratic.")] = 10.0,
    gif: Annotated[bool, typer.Option("--gif", help="Also write trajectories.gif (animated paths).")] = False,
    out: OutOpt = None, seed: SeedOpt = 0, device: DeviceOpt = "cpu", debug: DebugOpt = False,
) -> None:
    """Run several optimizers on a 2-D test function from the same start and draw their paths.

    Writes under --out: trajectories.png (contours, known minima ★ / saddles X / maxima ▲, every path; right:
    distance to the nearest minimum per step), trajectories.gif with --gif, and trajectories.json:
    {"function", "formula", "start", "steps", "minima", "saddles", "maxima", "runs": {optimizer: {"lr",
    "path" (the iterates, each a pair x, y), "values", "final", "final_value", "nearest_minimum",
    "distance_to_nearest_minimum",
    "steps_to_within_1e-6" (first step within 1e-6 of a known minimum, or null), "status" (ok / converged /
    diverged), "closure_evaluations"}}}. The runs are deterministic and on the CPU in float64 (--seed and
    --device are accepted for uniformity).
    """

    def run() -> None:
        from ravine.commands.compare import parse_lr
        from ravine.commands.progress import StageBars
        from ravine.landscape import functions
        from ravine.landscape import trajectories as run_all
        from ravine.landscape.figures import animate_paths, contour_paths
        from ravine.report.figures import to_png
        from ravine.utils import write_json

        fn = functions.get(function, **({"kappa": kappa} if function == "quadratic" else {}))
        names = [n.strip() for n in optimizers.split(",") if n.strip()]
        rates = parse_lr(lr)
        folder = out_dir(out, "trajectories")
        with StageBars() as bars:
            runs = run_all(fn, names, _start(start), steps, rates or None,
                           progress=lambda name, done, total: bars("optimizers", done, total))
            (folder / "trajectories.png").write_bytes(to_png(contour_paths(fn, runs)))
            if gif:
                bars("gif", 0, 1)
                animate_paths(fn, runs, folder / "trajectories.gif")
                bars("gif", 1, 1)
        first = next(iter(runs.values()))
        write_json(folder / "trajectories.json", {
            "function": fn.name, "formula": fn.formula, "start": list(first.path[0]), "steps": steps,
            "minima": [list(p) for p in fn.minima], "saddles": [list(p) for p in fn.saddles],
            "maxima": [list(p) for p in fn.maxima], "runs": {k: r.to_dict() for k, r in runs.items()}})
        table = Table(box=box.SIMPLE_HEAD, padding=(0, 0, 0, 1), pad_edge=False, show_edge=False,
                      title=f"ravine trajectories · {fn.name} · start "
                            f"({first.path[0][0]:g}, {first.path[0][1]:g}) · {steps} steps")
        for col in ("optimizer", "lr", "final (x, y)", "f", "to min", "steps≤1e-6", "status"):
            table.add_column(col, justify="left" if col in ("optimizer", "status") else "right", no_wrap=True)
        for name, r in runs.items():
            table.add_row(name, _fmt(r.lr), f"({r.final[0]:.4g}, {r.final[1]:.4g})", _fmt(r.values[-1]),
                          _fmt(r.distance, ".1e"), _fmt(r.steps_to_within), r.status)
        console.print(table)
        plain_line(f"wrote {folder / 'trajectories.png'}" + (" and trajectories.gif" if gif else ""))

    guard(debug, run)
