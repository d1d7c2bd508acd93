"""Two-dimensional test functions with their gradients, Hessians and known critical points.

Each function is a :class:`TestFunction`: the value f(x, y), the gradient ∇f and
the Hessian ∇²f written out by hand (the tests check them against autograd),
residuals r(x, y) with f = ½‖r‖² where f is a sum of squares (so Gauss–Newton
and Levenberg–Marquardt can run on it), the known minima, saddles and maxima,
a plotting window and a default start. The registry :func:`get` / :func:`names`
drives ``ravine trajectories`` and the tests.

``scipy.optimize.rosen`` / ``rosen_der`` / ``rosen_hess`` were considered: SciPy
has Rosenbrock only, in NumPy (no autograd, so the registry's optimizers could
not run on it); the tests use it as an oracle.

Example:
    >>> import torch
    >>> f = get("himmelblau")
    >>> float(f.value(torch.tensor(3.0), torch.tensor(2.0)))
    0.0
    >>> len(f.minima)
    4
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ravine.errors import ConfigError, check_range, unknown_name

Tensor = torch.Tensor
Point = tuple[float, float]


@dataclass(frozen=True)
class TestFunction:
    """A 2-D test function f(x, y) with its derivatives and known critical points.

    All callables take two tensors of the same (broadcastable) shape and work
    elementwise, so one call evaluates a whole contour grid.

    Attributes:
        name: registry name.
        formula: f(x, y) on one line.
        value: f(x, y).
        gradient: (∂f/∂x, ∂f/∂y).
        hessian: ((f_xx, f_xy), (f_xy, f_yy)) as a tensor of shape (..., 2, 2).
        residuals: r(x, y) stacked on the last axis with f = ½‖r‖², or None.
        minima: the known minimizers (global ones first).
        saddles: the known saddle points (indefinite Hessian).
        maxima: the known local maximizers.
        degenerate: known critical points with a singular Hessian (second-order test says nothing).
        bounds: plotting window ((x_lo, x_hi), (y_lo, y_hi)).
        start: the default start of ``ravine trajectories``.
        lr: learning rates that make a readable picture, per first-order optimizer.
        log_levels: draw contours on a log scale (functions with a huge range).
        note: what the function shows.
    """

    name: str
    formula: str
    value: Callable[[Tensor, Tensor], Tensor]
    gradient: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]
    hessian: Callable[[Tensor, Tensor], Tensor]
    residuals: Callable[[Tensor, Tensor], Tensor] | None
    minima: tuple[Point, ...]
    saddles: tuple[Point, ...] = ()
    maxima: tuple[Point, ...] = ()
    degenerate: tuple[Point, ...] = ()
    bounds: tuple[Point, Point] = ((-2.0, 2.0), (-2.0, 2.0))
    start: Point = (-1.0, 1.0)
    lr: dict[str, float] = field(default_factory=dict)
    log_levels: bool = False
    note: str = ""

    def __call__(self, point: Tensor) -> Tensor:
        """f at a point given as a tensor of shape (2,) (what optimizers update)."""
        return self.value(point[0], point[1])

    def residual_vector(self, point: Tensor) -> Tensor:
        """r at a point of shape (2,); raises ``ConfigError`` where f is not a sum of squares."""
        if self.residuals is None:
            with_r = ", ".join(n for n in names() if get(n).residuals is not None)
            raise ConfigError(f"Invalid function for a least-squares optimizer: {self.name!r} is not a sum of "
                              f"squares (allowed: {with_r})")
        return self.residuals(point[0], point[1])

    def nearest_minimum(self, point: Point) -> tuple[Point | None, float]:
        """The known minimizer nearest to ``point`` and the Euclidean distance (None, nan if none is known)."""
        if not self.minima:
            return None, math.nan
        best = min(self.minima, key=lambda m: math.dist(m, point))
        return best, math.dist(best, point)


def _hess(fxx: Tensor, fxy: Tensor, fyy: Tensor) -> Tensor:
    fxx, fxy, fyy = torch.broadcast_tensors(fxx, fxy, fyy)
    return torch.stack([torch.stack([fxx, fxy], -1), torch.stack([fxy, fyy], -1)], -2)


def _lift(x: Tensor, value: float) -> Tensor:
    return torch.full_like(x, value)


# --- Rosenbrock: f = (1 − x)² + 100 (y − x²)², the curved valley -----------------------------------


def rosenbrock(a: float = 1.0, b: float = 100.0) -> TestFunction:
    """Rosenbrock's banana valley f = (a − x)² + b (y − x²)², minimum (a, a²).

    ∇f = (−2(a − x) − 4b x (y − x²), 2b (y − x²));
    ∇²f = ((2 − 4b (y − 3x²), −4b x), (−4b x, 2b));
    r = (√2 (a − x), √(2b) (y − x²)).

    Example:
        >>> f = rosenbrock()
        >>> f.minima
        ((1.0, 1.0),)
    """
    a = check_range("a", a, error=ConfigError)
    b = check_range("b", b, 0.0, low_inclusive=False, error=ConfigError)
    return TestFunction(
        name="rosenbrock", formula=f"f = ({a:g} − x)² + {b:g} (y − x²)²",
        value=lambda x, y: (a - x) ** 2 + b * (y - x**2) ** 2,
        gradient=lambda x, y: (-2 * (a - x) - 4 * b * x * (y - x**2), 2 * b * (y - x**2)),
        hessian=lambda x, y: _hess(2 - 4 * b * (y - 3 * x**2), -4 * b * x, _lift(x, 2 * b)),
        residuals=lambda x, y: torch.stack([math.sqrt(2) * (a - x), math.sqrt(2 * b) * (y - x**2)], -1),
        minima=((a, a * a),), bounds=((-2.0, 2.0), (-1.0, 3.0)), start=(-1.2, 1.0),
        lr={"sgd": 1e-3, "momentum": 2e-4, "nesterov": 2e-4, "adagrad": 0.5, "rmsprop": 1e-2, "adam": 0.05,
            "line-search-gd": 1e-3},
        log_levels=True,
        note="a curved, flat-bottomed valley: easy to find, slow to follow (∇²f has κ ≈ 2500 at the minimum)")


def beale() -> TestFunction:
    """Beale's function f = Σᵢ (cᵢ − x + x yⁱ)², c = (1.5, 2.25, 2.625), minimum (3, 0.5).

    ∇f = Σ 2 eᵢ (yⁱ − 1, i x yⁱ⁻¹) with eᵢ = cᵢ − x + x yⁱ; ∇²f = Σ 2 (∇eᵢ ∇eᵢᵀ + eᵢ ∇²eᵢ)
    with ∇²eᵢ = ((0, i yⁱ⁻¹), (i yⁱ⁻¹, i(i−1) x yⁱ⁻²)); r = √2 e.

    Example:
        >>> beale().minima
        ((3.0, 0.5),)
    """
    cs = (1.5, 2.25, 2.625)

    def terms(x: Tensor, y: Tensor) -> list[Tensor]:
        return [c - x + x * y**i for i, c in enumerate(cs, start=1)]

    def gradient(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        gx = sum(2 * e * (y**i - 1) for i, e in enumerate(terms(x, y), start=1))
        gy = sum(2 * e * i * x * y ** (i - 1) for i, e in enumerate(terms(x, y), start=1))
        return gx, gy

    def hessian(x: Tensor, y: Tensor) -> Tensor:
        fxx = fxy = fyy = torch.zeros_like(x + y)
        for i, e in enumerate(terms(x, y), start=1):
            ex, ey = y**i - 1, i * x * y ** (i - 1)
            fxx = fxx + 2 * ex * ex
            fxy = fxy + 2 * (ex * ey + e * i * y ** (i - 1))
            fyy = fyy + 2 * (ey * ey + e * (i * (i - 1) * x * y ** (i - 2) if i > 1 else 0 * x))
        return _hess(fxx, fxy, fyy)

    return TestFunction(
        name="beale", formula="f = (1.5 − x + xy)² + (2.25 − x + xy²)² + (2.625 − x + xy³)²",
        value=lambda x, y: sum(e**2 for e in terms(x, y)), gradient=gradient, hessian=hessian,
        residuals=lambda x, y: math.sqrt(2) * torch.stack(torch.broadcast_tensors(*terms(x, y)), -1),
        minima=((3.0, 0.5),), bounds=((-4.5, 4.5), (-4.5, 4.5)), start=(1.0, 1.5),
        lr={"sgd": 1e-3, "momentum": 1e-4, "nesterov": 1e-4, "adagrad": 0.5, "rmsprop": 1e-2, "adam": 0.05,
            "line-search-gd": 1e-3},
        log_levels=True, note="flat plateaus and sharp ridges near the corners")


_HIMMELBLAU_MINIMA = ((3.0, 2.0), (-2.805118086953, 3.131312518251), (-3.779310253378, -3.283185991286),
                      (3.58442834033, -1.848126526964))
# Found by scipy.optimize.root from a 25×25 grid of starts (float64, ‖∇f‖ < 1e-10), each classified by the
# eigenvalues of the Hessian written out below.
_HIMMELBLAU_SADDLES = ((-3.073025750764, -0.081353044288), (-0.127961346731, -1.953714980245),
                       (0.086677504555, 2.884254701175), (3.385154183607, 0.073851879838))


def himmelblau() -> TestFunction:
    """Himmelblau's function f = (x² + y − 11)² + (x + y² − 7)²: four equal minima (f = 0).

    ∇f = (4x u + 2v, 2u + 4y v) with u = x² + y − 11, v = x + y² − 7;
    ∇²f = ((12x² + 4y − 42, 4x + 4y), (4x + 4y, 12y² + 4x − 26)); r = √2 (u, v).
    Nine critical points: four minima, four saddles, one maximum at (−0.2708, −0.9230).

    Example:
        >>> len(himmelblau().saddles)
        4
    """
    return TestFunction(
        name="himmelblau", formula="f = (x² + y − 11)² + (x + y² − 7)²",
        value=lambda x, y: (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2,
        gradient=lambda x, y: (4 * x * (x**2 + y - 11) + 2 * (x + y**2 - 7),
                               2 * (x**2 + y - 11) + 4 * y * (x + y**2 - 7)),
        hessian=lambda x, y: _hess(12 * x**2 + 4 * y - 42, 4 * x + 4 * y, 12 * y**2 + 4 * x - 26),
        residuals=lambda x, y: math.sqrt(2) * torch.stack(torch.broadcast_tensors(x**2 + y - 11, x + y**2 - 7), -1),
        minima=_HIMMELBLAU_MINIMA, saddles=_HIMMELBLAU_SADDLES, maxima=((-0.270844590667, -0.92303855648),),
        bounds=((-5.0, 5.0), (-5.0, 5.0)), start=(-0.5, 0.0),
        lr={"sgd": 0.01, "momentum": 2e-3, "nesterov": 2e-3, "adagrad": 0.5, "rmsprop": 0.05, "adam": 0.1,
            "line-search-gd": 0.01},
        log_levels=True, note="four minima of equal depth: where you end depends on where you start")


def saddle() -> TestFunction:
    """The saddle f = x² − y²: ∇²f = diag(2, −2) everywhere, a saddle at the origin, no minimum.

    Example:
        >>> saddle().saddles
        ((0.0, 0.0),)
    """
    return TestFunction(
        name="saddle", formula="f = x² − y²",
        value=lambda x, y: x**2 - y**2, gradient=lambda x, y: (2 * x, -2 * y),
        hessian=lambda x, y: _hess(_lift(x + y, 2.0), _lift(x + y, 0.0), _lift(x + y, -2.0)),
        residuals=None, minima=(), saddles=((0.0, 0.0),), bounds=((-2.0, 2.0), (-2.0, 2.0)), start=(-1.5, 1e-3),
        lr={"sgd": 0.05, "momentum": 0.02, "nesterov": 0.02, "adagrad": 0.1, "rmsprop": 0.01, "adam": 0.02,
            "line-search-gd": 0.05},
        note="gradient descent slows down near the saddle and escapes along −y only as fast as y grows")


def monkey_saddle() -> TestFunction:
    """The monkey saddle f = x³ − 3xy²: ∇²f = 0 at the origin (degenerate: the second-order test is silent).

    ∇f = (3x² − 3y², −6xy); ∇²f = ((6x, −6y), (−6y, −6x)).

    Example:
        >>> monkey_saddle().degenerate
        ((0.0, 0.0),)
    """
    return TestFunction(
        name="monkey-saddle", formula="f = x³ − 3xy²",
        value=lambda x, y: x**3 - 3 * x * y**2, gradient=lambda x, y: (3 * x**2 - 3 * y**2, -6 * x * y),
        hessian=lambda x, y: _hess(6 * x, -6 * y, -6 * x), residuals=None, minima=(),
        degenerate=((0.0, 0.0),), bounds=((-1.5, 1.5), (-1.5, 1.5)), start=(1.0, 0.05),
        lr={"sgd": 0.02, "momentum": 0.01, "nesterov": 0.01, "adagrad": 0.1, "rmsprop": 0.01, "adam": 0.02,
            "line-search-gd": 0.02},
        note="three valleys going down; the Hessian vanishes at the origin, so only higher orders show the saddle")


def quadratic(kappa: float = 10.0, angle: float = 30.0) -> TestFunction:
    """The ill-conditioned quadratic f = ½ (u² + κ v²) in coordinates (u, v) rotated by ``angle`` degrees.

    (u, v) = (x cos φ + y sin φ, −x sin φ + y cos φ), so ∇²f = Qᵀ diag(1, κ) Q is constant with
    eigenvalues 1 and κ: condition number κ, elliptical contours with axis ratio √κ.
    r = (u, √κ v): Gauss–Newton solves it in one step.

    Example:
        >>> import torch
        >>> zero = torch.tensor(0.0, dtype=torch.float64)
        >>> h = quadratic(kappa=50).hessian(zero, zero)
        >>> round(float(torch.linalg.cond(h)), 6)
        50.0
    """
    kappa = check_range("kappa", kappa, 1.0, error=ConfigError)
    angle = check_range("angle", angle, error=ConfigError)
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    hxx, hxy, hyy = c * c + kappa * s * s, c * s - kappa * c * s, s * s + kappa * c * c

    def uv(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        return c * x + s * y, -s * x + c * y

    def value(x: Tensor, y: Tensor) -> Tensor:
        u, v = uv(x, y)
        return 0.5 * (u**2 + kappa * v**2)

    def residuals(x: Tensor, y: Tensor) -> Tensor:
        u, v = uv(x, y)
        return torch.stack(torch.broadcast_tensors(u, math.sqrt(kappa) * v), -1)

    # the largest stable GD step is 2/κ; these rates sit at about half of it
    lr_gd = 1.0 / kappa
    return TestFunction(
        name="quadratic", formula=f"f = ½ (u² + {kappa:g} v²), (u, v) = (x, y) rotated by {angle:g}°",
        value=value, gradient=lambda x, y: (hxx * x + hxy * y, hxy * x + hyy * y),
        hessian=lambda x, y: _hess(_lift(x + y, hxx), _lift(x + y, hxy), _lift(x + y, hyy)),
        residuals=residuals, minima=((0.0, 0.0),), bounds=((-2.0, 2.0), (-2.0, 2.0)), start=(-1.8, -0.6),
        lr={"sgd": lr_gd, "momentum": 0.2 * lr_gd, "nesterov": 0.2 * lr_gd, "adagrad": 0.3, "rmsprop": 0.02,
            "adam": 0.05, "line-search-gd": lr_gd},
        note=f"condition number κ = {kappa:g}: gradient descent zig-zags across the ravine")


_CAMEL_MINIMA = ((0.0898420131, -0.712656403021), (-0.0898420131, 0.712656403021),
                 (-1.70360671497, 0.796083568673), (1.70360671497, -0.796083568673),
                 (-1.60710475292, -0.568651454884), (1.60710475292, 0.568651454884))
_CAMEL_SADDLES = ((0.0, 0.0), (-1.63806798419, -0.228674069044), (1.63806798419, 0.228674069044),
                  (-1.296070267167, -0.605084388039), (1.296070267167, 0.605084388039),
                  (-1.109205336805, 0.76826809251), (1.109205336805, -0.76826809251))
_CAMEL_MAXIMA = ((-1.230229876517, -0.162334584459), (1.230229876517, 0.162334584459))


def six_hump_camel() -> TestFunction:
    """The six-hump camel f = (4 − 2.1x² + x⁴/3) x² + xy + (4y² − 4) y²: two global minima f ≈ −1.0316.

    ∇f = (8x − 8.4x³ + 2x⁵ + y, x − 8y + 16y³); ∇²f = ((8 − 25.2x² + 10x⁴, 1), (1, −8 + 48y²)).
    Six minima, seven saddles, two maxima (found and classified like Himmelblau's).

    Example:
        >>> len(six_hump_camel().minima)
        6
    """
    return TestFunction(
        name="six-hump-camel", formula="f = (4 − 2.1x² + x⁴/3) x² + xy + (4y² − 4) y²",
        value=lambda x, y: (4 - 2.1 * x**2 + x**4 / 3) * x**2 + x * y + (4 * y**2 - 4) * y**2,
        gradient=lambda x, y: (8 * x - 8.4 * x**3 + 2 * x**5 + y, x - 8 * y + 16 * y**3),
        hessian=lambda x, y: _hess(8 - 25.2 * x**2 + 10 * x**4, _lift(x + y, 1.0), -8 + 48 * y**2),
        residuals=None, minima=_CAMEL_MINIMA, saddles=_CAMEL_SADDLES, maxima=_CAMEL_MAXIMA,
        bounds=((-2.0, 2.0), (-1.2, 1.2)), start=(-1.5, -1.0),
        lr={"sgd": 0.01, "momentum": 2e-3, "nesterov": 2e-3, "adagrad": 0.3, "rmsprop": 0.01, "adam": 0.05,
            "line-search-gd": 0.01},
        note="six minima of different depths: local methods stop at the nearest one")


def rastrigin(amplitude: float = 10.0) -> TestFunction:
    """Rastrigin's function f = 2A + Σ (xᵢ² − A cos 2πxᵢ), global minimum 0 at the origin.

    ∇f = (2x + 2πA sin 2πx, 2y + 2πA sin 2πy); ∇²f = diag(2 + 4π²A cos 2πx, 2 + 4π²A cos 2πy).
    Local minima near every integer point: only the global one is listed in ``minima``.

    Example:
        >>> rastrigin().minima
        ((0.0, 0.0),)
    """
    A = check_range("amplitude", amplitude, 0.0, error=ConfigError)
    tau = 2 * math.pi
    return TestFunction(
        name="rastrigin", formula=f"f = {2 * A:g} + x² − {A:g} cos 2πx + y² − {A:g} cos 2πy",
        value=lambda x, y: 2 * A + x**2 - A * torch.cos(tau * x) + y**2 - A * torch.cos(tau * y),
        gradient=lambda x, y: (2 * x + tau * A * torch.sin(tau * x), 2 * y + tau * A * torch.sin(tau * y)),
        hessian=lambda x, y: _hess(2 + tau**2 * A * torch.cos(tau * x), _lift(x + y, 0.0),
                                   2 + tau**2 * A * torch.cos(tau * y)),
        residuals=None, minima=((0.0, 0.0),), bounds=((-5.12, 5.12), (-5.12, 5.12)), start=(-2.3, 3.4),
        lr={"sgd": 1e-3, "momentum": 2e-4, "nesterov": 2e-4, "adagrad": 0.3, "rmsprop": 0.01, "adam": 0.05,
            "line-search-gd": 1e-3},
        note="a bowl covered in local minima: every local method is trapped near its start")


_REGISTRY: dict[str, Callable[[], TestFunction]] = {
    "rosenbrock": rosenbrock,
    "beale": beale,
    "himmelblau": himmelblau,
    "saddle": saddle,
    "monkey-saddle": monkey_saddle,
    "quadratic": quadratic,
    "six-hump-camel": six_hump_camel,
    "rastrigin": rastrigin,
}


def names() -> list[str]:
    """The registered test functions.

    Example:
        >>> "rosenbrock" in names()
        True
    """
    return list(_REGISTRY)


def get(name: str | TestFunction, **options: float) -> TestFunction:
    """A test function by name (options such as ``kappa`` go to its constructor), or the function itself.

    Raises:
        UnknownNameError: listing the known names.
        ConfigError: an option the function does not take.

    Example:
        >>> get("quadratic", kappa=100.0).formula.startswith("f = ½")
        True
    """
    if isinstance(name, TestFunction):
        return name
    key = name.replace("_", "-")
    if key not in _REGISTRY:
        raise unknown_name("function", name, _REGISTRY)
    try:
        return _REGISTRY[key](**options)
    except TypeError:
        raise ConfigError(f"Invalid options for function {key!r}: {sorted(options)}") from None
