"""What ``ravine landscape`` computes: train (or load) a problem, then its 1-D and 2-D landscapes.

:func:`landscape` trains a named problem with ``ravine.train.fit`` while a
callback records the parameters after every epoch (epoch 0 is the
initialization), or loads trained weights from a checkpoint; then it evaluates
the loss along the line from θ_init to θ_final on the training and validation
splits (:func:`~ravine.landscape.plane.interpolate`) and on a plane through
θ_final (:func:`~ravine.landscape.plane.plane`) with the trajectory projected on it.
For a model with exactly two scalar parameters it also draws the exact error
surface with the paths of GD, momentum, Nesterov, AdaGrad and RMSProp
(:func:`~ravine.landscape.demos.two_parameter_paths`).

Example:
    >>> res = landscape("diabetes-linreg", epochs=3, resolution=5)  # doctest: +SKIP
    >>> res.plane.directions  # doctest: +SKIP
    'pca'
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ravine.errors import CheckpointError, ConfigError, check_int, check_range
from ravine.landscape.demos import SPARSE_SIGMOID_OPTIMIZERS, TwoParameterPaths, two_parameter_paths
from ravine.landscape.plane import DIRECTIONS, Interpolation, Plane, interpolate, parameters_of, plane

Progress = Callable[[str, int, int], None]


@dataclass
class LandscapeResult:
    """What :func:`landscape` returns.

    Attributes:
        problem: the problem's name.
        source: ``"trained"`` or the checkpoint's path.
        optimizer: the optimizer that trained it (None for a checkpoint).
        epochs: epochs trained (0 for a checkpoint).
        n_params: the model's parameter count.
        rows: training rows the plane was evaluated on.
        interpolation: the loss along θ_α on the train and val splits.
        plane: the 2-D slice through θ_final (trajectory projected when recorded).
        two_parameter: the exact (w, b) surface with optimizer paths, for two-parameter models.
        seconds: wall time per stage.
    """

    problem: str
    source: str
    optimizer: str | None
    epochs: int
    n_params: int
    rows: int
    interpolation: Interpolation
    plane: Plane
    two_parameter: TwoParameterPaths | None
    seconds: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of lists and numbers (the ``landscape.json`` format)."""
        return {"problem": self.problem, "source": self.source, "optimizer": self.optimizer,
                "epochs": self.epochs, "n_params": self.n_params, "plane_rows": self.rows,
                "interpolation": self.interpolation.to_dict(), "plane": self.plane.to_dict(),
                "two_parameter": self.two_parameter.to_dict() if self.two_parameter else None,
                "seconds": self.seconds}


def landscape(problem: str | None, checkpoint: str | Path | None = None, *, optimizer: str = "adam",
              epochs: int | None = None, lr: float | None = None, directions: str | None = None,
              resolution: int = 21, span: float | None = None, rows: int | None = 4096, seed: int = 0,
              device: str = "cpu", ignore_1d: bool = True, progress: Progress | None = None) -> LandscapeResult:
    """Train (or load) ``problem`` and compute its interpolation line and 2-D plane.

    Args:
        problem: a problem name (``ravine.problems.names()``); None: the checkpoint's, else digits-mlp.
        checkpoint: a ravine checkpoint (``checkpoint.pt`` of ``ravine train`` / ``compare``):
            θ_final is loaded from it, θ_init is the initialization of the run that wrote it (its
            seed and problem options, read from the checkpoint), and there is no trajectory.
        optimizer, epochs, lr: the training run (defaults: adam, the problem's epochs and lr).
        directions: ``"pca"`` (default when trained: the plane that holds most of the trajectory),
            ``"random"`` (default with a checkpoint) or ``"hessian"``.
        resolution: plane grid points per axis.
        span: plane half-width (default: per kind of direction, see :func:`plane`).
        rows: evaluate the plane on at most this many training rows (a seeded subset; None: all).
        seed: problem build, training and random directions.
        device: where to compute.
        ignore_1d: zero the random directions' bias / normalization entries.
        progress: ``progress(stage, done, total)`` for the stages "train", "interpolate", "plane", "paths".
    """
    from ravine import optim, problems
    from ravine.train import Callback, fit, load_checkpoint, resolve_spec

    # every option checked before any training, so a typo costs nothing
    state = load_checkpoint(checkpoint) if checkpoint is not None else None
    saved = _saved_run(state)
    if problem is None:
        problem = saved.get("problem") or "digits-mlp"
    elif saved.get("problem") and saved["problem"] != problem:
        raise CheckpointError(f"checkpoint {checkpoint} was written by a run of problem {saved['problem']!r} "
                              f"(allowed: --problem {saved['problem']}, or leave --problem out)")
    recipe = problems.get(problem)
    resolution = check_int("resolution", resolution, 2, error=ConfigError)
    if directions is not None and directions not in DIRECTIONS:
        raise ConfigError(f"Invalid directions: {directions!r} (allowed: {', '.join(DIRECTIONS)})")
    if span is not None:
        check_range("span", span, 0.0, low_inclusive=False, error=ConfigError)
    if rows is not None:
        rows = check_int("rows", rows, 1, error=ConfigError)
    if checkpoint is None:
        optim.info(optimizer)
    # θ_init of a checkpoint is the initialization of the run that wrote it: its seed and problem options
    inst = recipe.build(seed=int(saved.get("seed", seed)), device=device, **saved.get("problem_options", {}))
    theta_init = parameters_of(inst.model)
    seconds: dict[str, float] = {}
    trajectory: list[dict[str, torch.Tensor]] = []
    t0 = time.perf_counter()
    if state is not None:
        weights = state.get("model")
        from ravine.train.checkpoint import weights_mismatch

        why = weights_mismatch(inst.model, weights)
        if why is not None:
            raise CheckpointError(f"Invalid checkpoint: {checkpoint} does not fit problem {problem!r} ({why}; "
                                  f"allowed: a checkpoint of {problem!r} with the same problem options)")
        try:
            inst.model.load_state_dict({k: v.to(inst.data.X_train.device) for k, v in weights.items()})
        except (RuntimeError, KeyError, TypeError, AttributeError):
            raise CheckpointError(f"checkpoint {checkpoint} does not fit problem {problem!r} (its weights have "
                                  f"other names or shapes; allowed: a checkpoint of {problem!r})") from None
        trained_epochs, used_optimizer = 0, None
    else:
        class Recorder(Callback):
            def on_fit_start(self, state: Any) -> None:
                trajectory.append(parameters_of(state.model))

            def on_epoch_end(self, state: Any) -> None:
                trajectory.append(parameters_of(state.model))

        # the problem's own rules for lr, batch size (whole split for full-batch methods) and epochs
        spec = resolve_spec(problem, optimizer, lr=lr, epochs=epochs, seed=seed, device=device, instance=inst)
        report = None if progress is None else (lambda d, t, _i: progress("train", d, t))
        result = fit(inst, optimizer, epochs=spec.epochs, batch_size=spec.batch_size, lr=spec.lr, seed=seed,
                     callbacks=[Recorder()], progress=report, tensorboard=False)
        inst.model = result.model
        trained_epochs, used_optimizer = spec.epochs, optimizer
    seconds["train"] = time.perf_counter() - t0
    theta_final = parameters_of(inst.model)
    d = inst.data
    t0 = time.perf_counter()
    interp = interpolate(inst.model, theta_init, theta_final, inst.loss_fn,
                         {"train": (d.X_train, d.y_train), "val": (d.X_val, d.y_val)})
    seconds["interpolate"] = time.perf_counter() - t0
    if progress is not None:
        progress("interpolate", 1, 1)
    kind = directions or ("pca" if len(trajectory) >= 3 else "random")
    X, y = _subset(d.X_train, d.y_train, rows, seed)
    t0 = time.perf_counter()
    report_plane = None if progress is None else (lambda done, total: progress("plane", done, total))
    slice_ = plane(inst.model, theta_final, kind, loss_fn=inst.loss_fn, data=(X, y),
                   trajectory=trajectory or None, resolution=resolution, span=span, seed=seed,
                   ignore_1d=ignore_1d, progress=report_plane)
    seconds["plane"] = time.perf_counter() - t0
    two = None
    params = list(inst.model.parameters())
    if len(params) == 2 and all(p.numel() == 1 for p in params):
        t0 = time.perf_counter()
        report_paths = None if progress is None else (lambda name, done, total: progress(f"paths {name}", done,
                                                                                          total))
        two = two_parameter_paths(problem, SPARSE_SIGMOID_OPTIMIZERS, seed=seed, epochs=epochs,
                                  progress=report_paths)
        seconds["two_parameter"] = time.perf_counter() - t0
    return LandscapeResult(recipe.name, "trained" if checkpoint is None else str(checkpoint), used_optimizer,
                           trained_epochs, sum(p.numel() for p in params), len(X), interp, slice_, two, seconds)


def _saved_run(state: dict[str, Any] | None) -> dict[str, Any]:
    """problem, problem_options and seed of the run that wrote a checkpoint (its ``config.spec``, or
    ``config`` itself in older checkpoints); empty when unknown."""
    if state is None:
        return {}
    config = state.get("config") if isinstance(state.get("config"), dict) else {}
    spec = config.get("spec") if isinstance(config.get("spec"), dict) else config
    out = {k: spec[k] for k in ("problem", "problem_options", "seed") if k in spec}
    if not isinstance(out.get("problem_options", {}), dict):
        out.pop("problem_options")
    return out


def _subset(X: torch.Tensor, y: torch.Tensor, rows: int | None, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    if rows is None or len(X) <= rows:
        return X, y
    rows = check_int("rows", rows, 1, error=ConfigError)
    keep = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed))[:rows].to(X.device)
    return X[keep], y[keep]
