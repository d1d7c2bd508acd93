"""``ravine curvature``: the Hessian spectrum of a problem at init or at a checkpoint (a shell over
``ravine.curvature.summary.analyze``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ravine.commands.common import DebugOpt, DeviceOpt, OutOpt, SeedOpt, console, guard, out_dir
from ravine.errors import CheckpointError, ConfigError, check_int, check_range

WHICH = ("largest", "smallest", "both_ends")
DTYPES = ("float32", "float64")
_SHAPE = {"saddle": "saddle-shaped (eigenvalues of both signs)", "minimum": "convex (all eigenvalues > 0)",
          "maximum": "concave (all eigenvalues < 0)", "degenerate": "flat in some directions (eigenvalues ≈ 0)"}
_CHUNK = 2048  # samples per batch when the data is split (bounds the retained graph's memory)


def curvature(
    problem: Annotated[str | None, typer.Option(help="Problem name (see `ravine problems`; default: the "
                                                     "checkpoint's, else digits-mlp).")] = None,
    checkpoint: Annotated[Path | None, typer.Option(help="checkpoint.pt of `ravine train` / `ravine compare` "
                                                         "(default: the problem's initial weights).")] = None,
    k: Annotated[int, typer.Option("--k", help="Eigenvalues at each end.")] = 5,
    which: Annotated[str, typer.Option(help="largest, smallest or both_ends.")] = "both_ends",
    tol: Annotated[float, typer.Option(help="Relative accuracy of each eigenvalue.")] = 1e-4,
    samples: Annotated[int, typer.Option(help="Training samples in the loss (0: the whole training split).")]
    = 1024,
    trace_products: Annotated[int, typer.Option(help="Hessian-vector products for the trace.")] = 500,
    dtype: Annotated[str, typer.Option(help="float64 (default, exact to more digits) or float32.")] = "float64",
    option: Annotated[list[str] | None, typer.Option(help="Problem option key=value (e.g. data_dir=DIR); "
                                                          "repeat.")] = None,
    out: OutOpt = None,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    debug: DebugOpt = False,
) -> None:
    """Hessian of a problem's training loss: extreme eigenvalues, trace, density, κ, saddle or minimum, Taylor step.

    Writes under --out: curvature.json, density.png, eigenvalues.png, taylor.png and
    report.html. curvature.json keys: problem, checkpoint, dtype, device, seed, loss,
    grad_norm, n_params, n_samples, hvp_mode, hvp_count (Hessian-vector products),
    time_s, timings (seconds per part); eigenvalues {values (descending: the k largest,
    then the k smallest), which, tol, error_bounds, converged, n_products, method,
    lambda_max, lambda_min}; trace {value, stderr (95%: ±1.96·stderr), n_products,
    method, sketch (dimension traced exactly), design (probes per sign design)}; condition_number (λ_max/λ_min, null unless λ_min > 0); critical_point {kind:
    minimum | maximum | saddle | degenerate, n_positive, n_negative, n_zero, lambda_min,
    lambda_max, grad_norm, critical}; taylor {eps, predicted, actual, loss, grad_sq, gHg,
    curvature (gᵀHg/gᵀg), eps_star (gᵀg/gᵀHg), eps_increase, lambda_max, lr_max
    (2/λ_max), best_actual_eps, n_products}; density {grid, density, sigma, n_products,
    probes, steps}. inf is written as null. Exit code 0, or 2 on bad input.
    """
    guard(debug, _run, problem, checkpoint, k, which, tol, samples, trace_products, dtype, option, out, seed,
          device)


def _run(problem: str | None, checkpoint: Path | None, k: int, which: str, tol: float, samples: int,
         trace_products: int, dtype: str, option: list[str] | None, out: Path | None, seed: int,
         device: str) -> None:
    import torch

    from ravine.commands.compare import parse_kv
    from ravine.curvature.summary import analyze
    from ravine.report.curvature import write_figures
    from ravine.utils import resolve_device, write_json

    if which not in WHICH:
        raise ConfigError(f"Invalid --which: {which!r} (allowed: {', '.join(WHICH)})")
    if dtype not in DTYPES:
        raise ConfigError(f"Invalid --dtype: {dtype!r} (allowed: {', '.join(DTYPES)})")
    check_int("--k", k, 1, error=ConfigError)
    check_range("--tol", tol, 0.0, 0.1, low_inclusive=False, error=ConfigError)
    check_int("--samples", samples, 0, error=ConfigError)
    check_int("--trace-products", trace_products, 3, error=ConfigError)
    options = parse_kv(option, "--option")
    state = _load(checkpoint) if checkpoint is not None else None
    saved = _saved_run(state)
    name = problem or saved.get("problem") or "digits-mlp"
    if problem is None and state is not None and not saved.get("problem"):
        raise CheckpointError(f"checkpoint {checkpoint} names no problem; pass --problem")
    if saved.get("problem") == name:  # the options and seed the run was built with, so the model fits
        options = {**(saved.get("problem_options") or {}), **options}
    from ravine import problems

    folder = out_dir(out, "curvature")  # checked (and locked) before any work
    torch_dtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
    dev = resolve_device(device)
    build_seed = int(saved.get("seed", seed)) if state is not None else seed
    inst = problems.get(name).build(seed=build_seed, device=dev, dtype=torch_dtype, **options)
    if state is not None:
        _load_weights(inst.model, state["model"], checkpoint)  # type: ignore[arg-type]
    inst.model.eval()  # no dropout mask: H must be the same matrix for every product
    X, y = inst.data.X_train, inst.data.y_train
    if samples and samples < len(X):
        idx = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed))[:samples].to(X.device)
        X, y = X[idx], y[idx]
    data: Any = (X, y) if len(X) <= 2 * _CHUNK else list(zip(X.split(_CHUNK), y.split(_CHUNK), strict=True))

    with Progress(TextColumn("[bold cyan]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task(f"curvature · {name}", total=4, status="eigenvalues")
        nxt = {"eigenvalues": "trace", "trace": "density", "density": "taylor", "taylor": "done"}

        def progress(part: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, status=nxt[part])

        summary = analyze(inst.model, inst.loss_fn, data, k=k, which=which, tol=tol, trace_products=trace_products,
                          seed=seed, progress=progress)
    result = {"problem": name, "checkpoint": str(checkpoint) if checkpoint else None, "dtype": dtype,
              "device": str(dev), "seed": seed, **summary.as_dict()}
    write_json(folder / "curvature.json", result)
    write_figures(folder, summary, title=f"ravine curvature · {name}")
    _print(summary, folder)


def _saved_run(state: dict[str, Any] | None) -> dict[str, Any]:
    """problem, problem_options and seed of the run that wrote the checkpoint (``config.spec``, or
    ``config`` itself in older checkpoints)."""
    if state is None:
        return {}
    config = state.get("config") if isinstance(state.get("config"), dict) else {}
    spec = config.get("spec") if isinstance(config.get("spec"), dict) else config
    return {k: spec[k] for k in ("problem", "problem_options", "seed") if k in spec}


def _load(path: Path) -> dict[str, Any]:
    from ravine.train.checkpoint import load_checkpoint

    state = load_checkpoint(path)
    if not isinstance(state.get("model"), dict):
        raise CheckpointError(f"checkpoint {path} holds no model weights")
    return state


def _load_weights(model: Any, weights: dict[str, Any], path: Path) -> None:
    from ravine.train.checkpoint import weights_mismatch

    why = weights_mismatch(model, weights)
    if why is not None:
        raise CheckpointError(f"Invalid --checkpoint: {path} does not fit the problem's model ({why}; allowed: a "
                              "checkpoint of the same problem, with the same --option values)")
    try:
        model.load_state_dict(weights)
    except (RuntimeError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"checkpoint {path} does not fit the problem's model ({first})") from None


def _print(summary: Any, folder: Path) -> None:
    e, p, t = summary.eigen, summary.critical_point, summary.taylor
    vals = ", ".join(f"{v:.4g}" for v in e.values.tolist())
    kappa = summary.condition_number
    lines = [
        f"[bold]eigenvalues[/] ({e.which}, tol {e.tol:g}{'' if e.converged else ', NOT converged'}): {vals}",
        (f"[bold]critical point:[/] {p.kind} (‖g‖ = {summary.grad_norm:.3g})" if p.critical else
         f"[bold]not a critical point[/] (‖g‖ = {summary.grad_norm:.3g}); the curvature is {_SHAPE[p.kind]}"),
        f"[bold]condition number:[/] {'∞ (λ_min ≤ 0)' if kappa == float('inf') else f'{kappa:.4g}'}",
        f"[bold]trace:[/] {summary.trace.value:.5g} ± {1.96 * summary.trace.stderr:.2g} (95%, {summary.trace.method})",
        f"[bold]Taylor step:[/] ε* = gᵀg/gᵀHg = {t.eps_star:.4g}, 2/λ_max = "
        f"{'—' if t.lr_max is None else f'{t.lr_max:.4g}'}",
        f"{summary.n_products} Hessian-vector products in {summary.time_s:.2f} s; written to {escape(str(folder))}",
    ]
    for line in lines:
        console.print(line, highlight=False)
