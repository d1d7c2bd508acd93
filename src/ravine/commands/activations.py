"""``ravine activations``: the course's activation table, measured."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from ravine.commands.common import (DebugOpt, DeviceOpt, OutOpt, SeedOpt, console, guard, out_dir, print_table,
                                    plain_line)


def activations(
    names: Annotated[str, typer.Option(
        "--names", help="Comma-separated activations, or all: sigmoid, tanh, relu, leaky-relu, prelu, elu, gelu.")] = "all",
    samples: Annotated[int, typer.Option("--samples", help="Monte Carlo draws per statistic.")] = 200_000,
    shift: Annotated[float, typer.Option("--shift", help="Input mean for the dead fraction, N(shift, 1).")] = -2.0,
    repeats: Annotated[int, typer.Option("--repeats", help="Timing repeats (median).")] = 7,
    out: OutOpt = None,
    seed: SeedOpt = 0,
    device: DeviceOpt = "cpu",
    debug: DebugOpt = False,
) -> None:
    """Measure the activation table; prints it and writes DIR/activations.json and DIR/activations.png.

    Columns: output range on [−50, 50]; mean output for x ~ N(0, 1) (zero-centred ≈ 0); saturation: P(|f′| < 0.01)
    for x ~ N(0, σ²), σ = 1 and 5; max f′ on the grid; dead: P(f′ = 0) for x ~ N(--shift, 1); time: median
    forward + backward on 10⁶ float32 values relative to ReLU (machine-dependent).

    activations.json: {grid: {low, high, points}, saturation_threshold, seed, samples, shift, device, rows:
    [{name, range_min, range_max, mean_normal, saturation_1, saturation_5, max_derivative, argmax_derivative,
    dead_fraction, time_ms, time_relative}]}. The figure: each function (solid) and its derivative (dashed).
    """
    guard(debug, _run, names, samples, shift, repeats, out, seed, device)


def _run(names: str, samples: int, shift: float, repeats: int, out: Path | None, seed: int, device: str) -> None:
    from ravine import activations as act
    from ravine.errors import unknown_name
    from ravine.models import ACTIVATIONS
    from ravine.report.figures import to_png
    from ravine.utils import atomic_write_bytes, resolve_device, write_json

    dev = resolve_device(device)
    chosen = list(ACTIVATIONS) if names.strip() == "all" else [n.strip() for n in names.split(",") if n.strip()]
    for name in chosen:
        if name not in ACTIVATIONS:
            raise unknown_name("activation", name, ACTIVATIONS)
    act.measure("relu", samples=samples, shift=shift, time_size=0, seed=seed, device=dev)  # validates the options
    act.timings(["relu"], repeats=repeats, time_size=1, device=dev)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    rows = []
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("measuring", total=len(chosen) + 1)
        for name in chosen:
            bar.update(task, description=f"measuring {name}")
            rows.append(act.measure(name, samples=samples, shift=shift, time_size=0, seed=seed, device=dev))
            bar.advance(task)
        bar.update(task, description="timing forward + backward")
        ms = act.timings(list(dict.fromkeys([*chosen, "relu"])), repeats=repeats, seed=seed, device=dev)
        bar.advance(task)
    for r in rows:
        r.time_ms = ms[r.name]
        r.time_relative = ms[r.name] / ms["relu"] if ms["relu"] > 0 else None
    path = out_dir(out, "activations")
    result = {**act.to_dict(rows), "seed": seed, "samples": samples, "shift": shift, "device": str(dev)}
    write_json(path / "activations.json", result)
    atomic_write_bytes(path / "activations.png", to_png(act.figure(chosen)))
    _print(rows, shift)
    plain_line(f"wrote {path / 'activations.json'} and {path / 'activations.png'}")


def _print(rows: list, shift: float) -> None:
    # one-word headers: the shared table never wraps a number column's header
    columns = [("name", "name"), ("min", "num"), ("max", "num"), ("mean", "num"), ("sat1", "num"),
               ("sat5", "num"), ("max f′", "num"), ("dead", "num"), ("time", "num")]
    table = [[r.name, f"{r.range_min:.4g}", f"{r.range_max:.4g}", f"{r.mean_normal:+.4f}", f"{r.saturation_1:.3f}",
              f"{r.saturation_5:.3f}", f"{r.max_derivative:.4f}", f"{r.dead_fraction:.3f}",
              "—" if r.time_relative is None else f"{r.time_relative:.2f}×"] for r in rows]
    print_table("activations, measured", columns, table, [
        "min, max: output range on [−50, 50]; mean: E f(x), x ~ N(0, 1); sat1, sat5: P(|f′| < 0.01), x ~ N(0, σ²), "
        "σ = 1, 5",
        f"dead: P(f′ = 0), x ~ N({shift:g}, 1); time: forward + backward relative to relu (this machine)"])
