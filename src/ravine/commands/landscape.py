"""``ravine landscape``: train (or load) a problem; the loss along θ_init → θ_final and on a 2-D plane."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ravine.commands.common import DebugOpt, DeviceOpt, OutOpt, SeedOpt, console, guard, out_dir, plain_line


def landscape(
    problem: Annotated[str | None, typer.Option(help="Problem name (see `ravine problems`; default: the "
                                                     "checkpoint's, else digits-mlp).")] = None,
    checkpoint: Annotated[Path | None, typer.Option(help="Load θ_final from this checkpoint.pt instead of "
                                                         "training (no trajectory then).")] = None,
    optimizer: Annotated[str, typer.Option(help="Optimizer that trains it (see `ravine optimizers`).")] = "adam",
    epochs: Annotated[int | None, typer.Option(help="Epochs (default: the problem's).")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate (default: the problem's for the optimizer).")]
    = None,
    directions: Annotated[str | None, typer.Option(help="Plane directions: pca (of the trajectory; default "
                                                        "when training), random (filter-normalized Gaussian; "
                                                        "default with --checkpoint) or hessian (top-2 "
                                                        "eigenvectors).")] = None,
    resolution: Annotated[int, typer.Option(help="Plane grid points per axis.")] = 21,
    span: Annotated[float | None, typer.Option(help="Plane half-width in direction units (default: 1 for "
                                                    "random / hessian, the trajectory's extent for pca).")]
    = None,
    rows: Annotated[int, typer.Option(help="Training rows the plane is evaluated on (a seeded subset).")] = 4096,
    include_bias: Annotated[bool, typer.Option("--include-bias", help="Random directions also move biases and "
                                                                      "normalization parameters (default: "
                                                                      "zero there, Li et al.'s biasbn).")]
    = False,
    out: OutOpt = None, seed: SeedOpt = 0, device: DeviceOpt = "auto", debug: DebugOpt = False,
) -> None:
    """Train a problem (or load a checkpoint) and draw its loss landscape.

    Writes under --out: interpolation.png (loss along θ_α = α θ_final + (1 − α) θ_init, α from −0.5 to 1.5, train
    and val), plane_contour.png and plane_surface.png (loss on θ_final + a d1 + b d2, trajectory projected),
    two_parameter_paths.png for two-parameter models (sparse-sigmoid: the exact error surface over (w, b) with
    GD, momentum, Nesterov, AdaGrad and RMSProp from one start), and landscape.json: {"problem", "source",
    "optimizer", "epochs", "n_params", "plane_rows", "interpolation": {"alphas", "loss": {"train", "val"}},
    "plane": {"directions", "alphas", "betas", "loss" (rows along b), "trajectory" (a pair a, b per epoch),
    "explained_variance" (pca), "eigenvalues" (hessian), "center_loss", "direction_norms", "mode": "eval"},
    "two_parameter": {"parameters", "surface", "paths", "lr", "final_loss"} or null, "seconds"}. The model is
    evaluated in eval mode (BatchNorm running statistics, no dropout).
    """

    def run() -> None:
        from ravine.commands.progress import StageBars
        from ravine.landscape.analysis import landscape as compute
        from ravine.landscape.figures import interpolation_figure, plane_contour, plane_surface
        from ravine.report.figures import to_png
        from ravine.utils import resolve_device, write_json

        folder = out_dir(out, "landscape")
        with StageBars() as bars:
            res = compute(problem, checkpoint, optimizer=optimizer, epochs=epochs, lr=lr, directions=directions,
                          resolution=resolution, span=span, rows=rows, seed=seed,
                          device=str(resolve_device(device)), ignore_1d=not include_bias, progress=bars)
        figures = {"interpolation.png": interpolation_figure(res.interpolation),
                   "plane_contour.png": plane_contour(res.plane),
                   "plane_surface.png": plane_surface(res.plane)}
        if res.two_parameter is not None:
            two = res.two_parameter
            figures["two_parameter_paths.png"] = plane_contour(
                two.surface, two.paths, title=f"{two.problem}: training loss over ({two.names[0]}, {two.names[1]}) "
                                              "and each optimizer's path from one start",
                labels=(f"w = {two.names[0]}", f"b = {two.names[1]}"), show_center=False)
        for name, fig in figures.items():
            (folder / name).write_bytes(to_png(fig))
        write_json(folder / "landscape.json", res.to_dict())
        p = res.plane
        console.print(f"ravine landscape · {res.problem} · {res.n_params} parameters · "
                      f"{res.source if res.optimizer is None else f'{res.optimizer}, {res.epochs} epochs'}")
        console.print(f"  loss at θ_final {p.center_loss:.4g}; plane of {p.directions} directions, "
                      f"{len(p.alphas)}×{len(p.betas)} points in {res.seconds['plane']:.1f} s")
        if p.explained_variance:
            console.print(f"  the two PCA directions hold {100 * sum(p.explained_variance):.1f}% of the "
                          "trajectory's variance")
        plain_line(f"wrote {folder / 'landscape.json'} and {len(figures)} figures")

    guard(debug, run)
