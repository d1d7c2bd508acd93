"""``ravine diagnose``: train briefly with the instruments on; findings in plain words, with suggestions."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from ravine.commands.common import (DebugOpt, DeviceOpt, OutOpt, SeedOpt, console, guard, out_dir,
                                   parse_batch_size, problem_for, problem_options, plain_line)
from ravine.commands.progress import run_bars
from ravine.errors import ConfigError


def _parse_lr(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"Invalid --lr: {text!r} (allowed: one positive number, e.g. 0.1)")
    return value


def diagnose(
    problem: Annotated[str | None, typer.Option(help="Problem name (see `ravine problems`; default: csv or npz with "
                                                     "--data, else digits-mlp).")] = None,
    optimizer: Annotated[str, typer.Option(help="Optimizer name (see `ravine optimizers`).")] = "sgd",
    lr: Annotated[str | None, typer.Option(help="Learning rate (default: the problem's for the optimizer).")] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs (default: the problem's).")] = None,
    batch_size: Annotated[str, typer.Option(help="Minibatch size, 'full', or 'auto' (the problem's).")] = "auto",
    activation: Annotated[str | None, typer.Option(help="Activation: sigmoid, tanh, relu, leaky-relu, prelu, elu, "
                                                        "gelu (default: the problem's).")] = None,
    init: Annotated[str | None, typer.Option(help="Initialization: constant, constant:<value>, zeros, small-normal, "
                                                  "xavier-uniform, xavier-normal, he-normal (default: the "
                                                  "problem's).")] = None,
    every: Annotated[int, typer.Option(help="Instrument report interval in iterations.")] = 10,
    compare_inits: Annotated[bool, typer.Option("--compare-inits", help="Also train under each of the course's "
                                                "five initializations; activation std by depth side by side.")]
    = False,
    noise: Annotated[bool, typer.Option("--noise/--no-noise", help="Measure the gradient noise (per-sample "
                                        "gradients) at the start and the end.")] = True,
    data: Annotated[Path | None, typer.Option(help="CSV or NPZ file for the csv / npz problems.")] = None,
    target_column: Annotated[str | None, typer.Option(help="Target column of a CSV file.")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Folder with MNIST / Fashion-MNIST IDX files.")] = None,
    out: OutOpt = None, seed: SeedOpt = 0, device: DeviceOpt = "auto", debug: DebugOpt = False,
) -> None:
    """Train briefly with instruments on every layer and say, in plain words, what is wrong and what to change.

    Findings: diverging, oscillating, plateau, too slow, underfitting, overfitting (only when the validation
    loss rose from its minimum by more than its noise for 3 epochs), healthy; dead units, saturated units,
    symmetry, vanishing / exploding gradients, shrinking activations, gradient noise (B_simple).

    Writes under --out: diagnose.json ({"problem", "optimizer", "lr", "epochs", "batch_size", "activation",
    "init", "seed", "every", "history", "instruments": {"steps", "epochs", "layers": [{"layer", "kind", "mean",
    "std", "dead", "saturated", "grad_rms", "hist", "range"}], "params": [{"layer", "size", "weight_norm",
    "grad_norm", "update_ratio"}], "symmetry_start", "symmetry_end", "probe_start", "probe_end"}, "noise":
    {"start", "end": {"batch_sizes", "variance", "predicted", "slope", "trace_sigma", "grad_norm_sq",
    "b_simple"}}, "findings": [{"kind", "began_at", "unit", "message", "suggestion", "evidence"}], "headline",
    "compare_inits": {init: {"layers", "std_start", "std_end", "final_train_loss", "final_val_metric",
    "findings"}}}) and report.html (figures embedded). Exit 0 on success, 2 on bad input.
    """

    problem = problem_for(problem, data)

    def run() -> None:
        from ravine import problems
        from ravine.diagnostics.run import diagnose as diagnose_fn

        recipe = problems.get(problem)
        options = problem_options(recipe, data=data, target=target_column, data_dir=data_dir)
        if activation is not None:
            from ravine.models import activation as make_activation

            make_activation(activation)
        if init is not None:
            from ravine.models.layers import check_init

            check_init(init)
        rate, batch = _parse_lr(lr), parse_batch_size(batch_size)
        folder = out_dir(out, "diagnose")
        with run_bars() as bars:
            result = diagnose_fn(problem, optimizer, lr=rate, epochs=epochs, batch_size=batch,
                                 activation=activation, init=init, every=every, noise=noise,
                                 compare_inits=compare_inits, problem_options=options, seed=seed, device=device,
                                 out_dir=folder, progress=bars)
        _print(result)
        plain_line(f"wrote {folder / 'diagnose.json'} and {folder / 'report.html'}")

    guard(debug, run)


def _print(result: dict[str, Any]) -> None:
    model = "".join(f" · {key} {escape(str(result[key]))}" for key in ("activation", "init")
                    if result.get(key) is not None)  # a linear model has neither
    console.print(f"[bold]ravine diagnose[/] · {escape(result['problem'])} · {escape(result['optimizer'])} "
                  f"lr {result['lr']:.4g} · {result['epochs']} epochs{model}", highlight=False)
    for f in result["findings"]:
        since = "" if f.get("began_at") is None else f" (since {f['unit']} {f['began_at']})"
        console.print(f"[bold]{escape(f['kind'])}[/]{since}: {escape(f['message'])}", highlight=False,
                      soft_wrap=True)
        console.print(f"  → {escape(f['suggestion'])}", highlight=False, soft_wrap=True)
    if result.get("compare_inits"):
        console.print("[bold]activation std by depth at initialization[/]", highlight=False)
        for name, run in result["compare_inits"].items():
            stds = ", ".join(f"{s:.3g}" for s in run["std_start"])
            console.print(f"  {name:>15}: {stds}  (val metric after training {run['final_val_metric']:.4g})",
                          highlight=False, soft_wrap=True)
