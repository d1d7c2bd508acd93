"""The course's two-parameter figure: a model's error surface over its two weights, with optimizer paths.

For a problem whose model has exactly two scalar parameters — ``sparse-sigmoid``,
ŷ = σ(w x + b) — the whole weight space is a plane, so the surface is exact
(no random slice) and every optimizer's path can be drawn on it. On
``sparse-sigmoid`` 80 % of the inputs are x = 0: on those rows ∂L/∂w = 0, so
w gets a gradient from only one row in five and crawls for GD, momentum and
Nesterov, while AdaGrad and RMSProp divide by the small running size of w's
gradient and move w as fast as b.

Example:
    >>> demo = two_parameter_paths("sparse-sigmoid", ["sgd", "adagrad"], epochs=2)  # doctest: +SKIP
    >>> sorted(demo.paths)  # doctest: +SKIP
    ['adagrad', 'sgd']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ravine.errors import ConfigError
from ravine.landscape.plane import Plane, plane

SPARSE_SIGMOID_OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop")


@dataclass
class TwoParameterPaths:
    """The exact error surface L(w, b) of a two-parameter model and the optimizers' paths on it.

    Attributes:
        problem: the problem's name.
        names: the two parameters' names (``("0.weight", "0.bias")``).
        surface: the training loss on the (w, b) grid (a :class:`Plane` with ``directions="given"``:
            a = w, b = b).
        paths: per optimizer, (w, b) after every iteration, the start first.
        lr: the learning rate each optimizer used.
        final_loss: the training loss at the end of each path.
    """

    problem: str
    names: tuple[str, str]
    surface: Plane
    paths: dict[str, list[tuple[float, float]]]
    lr: dict[str, float]
    final_loss: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """A plain dict for JSON."""
        return {"problem": self.problem, "parameters": list(self.names), "surface": self.surface.to_dict(),
                "paths": {k: [list(p) for p in v] for k, v in self.paths.items()}, "lr": self.lr,
                "final_loss": self.final_loss}


def two_parameter_paths(problem: str = "sparse-sigmoid", optimizers: Sequence[str] = SPARSE_SIGMOID_OPTIMIZERS,
                        start: tuple[float, float] | None = None, *, seed: int = 0, epochs: int | None = None,
                        lr: dict[str, float] | None = None, resolution: int = 61,
                        span: tuple[tuple[float, float], tuple[float, float]] | None = None,
                        progress: Callable[[str, int, int], None] | None = None) -> TwoParameterPaths:
    """Train a two-parameter problem with several optimizers from one start; the surface under their paths.

    Each optimizer trains a fresh copy of the model from ``start`` with
    ``ravine.train.fit`` (the problem's batch size, epochs and per-optimizer
    learning rate, the same seed so the same minibatches); a callback records
    (w, b) after every step. The surface is the training loss on a grid over
    the window that holds every path and the least-squares optimum.

    Args:
        problem: a problem name whose model has exactly two scalar parameters.
        optimizers: registry names (default GD, momentum, Nesterov, AdaGrad, RMSProp).
        start: (w₀, b₀); default (−2, 2) for ``sparse-sigmoid`` (far from w* = 3, b* = −1 on both
            axes, so the crawl of w shows), else the problem's initialization.
        seed: data split, minibatch order.
        epochs: default: the problem's.
        lr: per-optimizer learning rates (default: the problem's table).
        resolution: grid points per axis.
        span: ((w_lo, w_hi), (b_lo, b_hi)); default: the paths' extent plus a margin.
        progress: ``progress(optimizer, done_iterations, total_iterations)``.

    Raises:
        ConfigError: a model without exactly two scalar parameters.
    """
    from ravine import problems
    from ravine.train import Callback, default_lr, fit

    recipe = problems.get(problem)
    inst = recipe.build(seed=seed)
    named = [(n, p) for n, p in inst.model.named_parameters()]
    if len(named) != 2 or any(p.numel() != 1 for _, p in named):
        raise ConfigError(f"Invalid problem: {problem!r} has {sum(p.numel() for _, p in named)} parameters "
                          "(allowed: a problem whose model has exactly two scalar parameters, e.g. sparse-sigmoid)")
    names = (named[0][0], named[1][0])
    if start is None:
        start = (-2.0, 2.0) if problem == "sparse-sigmoid" else tuple(float(p) for _, p in named)  # type: ignore
    w0 = torch.tensor([float(start[0]), float(start[1])], dtype=torch.float32)

    class Recorder(Callback):
        def __init__(self) -> None:
            self.path: list[tuple[float, float]] = []

        def on_fit_start(self, state: Any) -> None:
            self.path.append(self._point(state.model))

        def on_iteration_end(self, state: Any) -> None:
            self.path.append(self._point(state.model))

        @staticmethod
        def _point(model: torch.nn.Module) -> tuple[float, float]:
            a, b = (float(p.detach().reshape(())) for p in model.parameters())
            return (a, b)

    paths, rates, final = {}, {}, {}
    for name in optimizers:
        run_inst = recipe.build(seed=seed)
        with torch.no_grad():
            for p, v in zip(run_inst.model.parameters(), w0, strict=True):
                p.fill_(float(v))
        rate = (lr or {}).get(name) or default_lr(name, recipe)[0]
        rec = Recorder()
        report = None if progress is None else (lambda d, t, _i, n=name: progress(n, d, t))
        result = fit(run_inst, name, epochs=epochs or recipe.epochs, batch_size=recipe.batch_size, lr=rate,
                     seed=seed, callbacks=[rec], progress=report, tensorboard=False)
        paths[name], rates[name] = rec.path, float(rate)
        final[name] = float(result.history.epochs.train_loss[-1])
    window = span or _window([p for path in paths.values() for p in path] + [(3.0, -1.0)])
    e_w, e_b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    surface = plane(inst.model, torch.zeros(2), (e_w, e_b), loss_fn=inst.loss_fn,
                    data=(inst.data.X_train, inst.data.y_train), resolution=resolution, span=window)
    return TwoParameterPaths(problem, names, surface, paths, rates, final)


def _window(points: Sequence[tuple[float, float]]) -> tuple[tuple[float, float], tuple[float, float]]:
    pts = [p for p in points if all(abs(v) < 1e3 for v in p)]
    out = []
    for k in range(2):
        lo, hi = min(p[k] for p in pts), max(p[k] for p in pts)
        margin = 0.15 * max(hi - lo, 0.5)
        out.append((lo - margin, hi + margin))
    return out[0], out[1]


__all__ = ["SPARSE_SIGMOID_OPTIMIZERS", "TwoParameterPaths", "two_parameter_paths"]
