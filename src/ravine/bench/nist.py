"""The NIST StRD nonlinear regression suite: parser, models, LRE, and the benchmark run.

The 27 problems (public domain, https://www.itl.nist.gov/div898/strd/nls/) ship
as ``ravine/data/nist/*.dat``. Each file gives the model in words, two starting
points, certified parameters b* and residual sum of squares, and the data.
Accuracy is scored by the log relative error (LRE), the number of correct
significant digits:

    LRE(b, b*) = −log10(|b − b*| / |b*|)   (−log10 |b| when b* = 0),

clipped to [0, 11] (the certified values carry 11 digits). A run "solves" a
problem when the minimum LRE over the parameters is ≥ 6.

Example:
    >>> prob = load("Misra1a")
    >>> prob.n_params, prob.n_obs
    (2, 14)
    >>> r = prob.residual_fn()(torch.tensor(prob.certified, dtype=torch.float64))
    >>> round(float(r @ r), 6) == round(prob.certified_rss, 6)
    True
"""

from __future__ import annotations

import math
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
import torch

from ravine.errors import DataError, unknown_name

LRE_CAP = 11.0
SOLVERS = ("ravine-lm", "scipy-lm-fd", "scipy-lm-exact", "ravine-gn", "ravine-levenberg")

Model = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _rational(b: torch.Tensor, x: torch.Tensor, k: int) -> torch.Tensor:
    """(b1 + b2 x + ... + bk x^(k-1)) / (1 + b(k+1) x + ...): Thurber, Hahn1, Kirby2."""
    num = sum(b[i] * x**i for i in range(k))
    den = 1 + sum(b[k + i] * x ** (i + 1) for i in range(b.numel() - k))
    return num / den


def _gauss(b: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return (b[0] * torch.exp(-b[1] * x) + b[2] * torch.exp(-((x - b[3]) ** 2) / b[4] ** 2)
            + b[5] * torch.exp(-((x - b[6]) ** 2) / b[7] ** 2))


def _lanczos(b: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return b[0] * torch.exp(-b[1] * x) + b[2] * torch.exp(-b[3] * x) + b[4] * torch.exp(-b[5] * x)


def _enso(b: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    w = 2 * math.pi * x
    return (b[0] + b[1] * torch.cos(w / 12) + b[2] * torch.sin(w / 12) + b[4] * torch.cos(w / b[3])
            + b[5] * torch.sin(w / b[3]) + b[7] * torch.cos(w / b[6]) + b[8] * torch.sin(w / b[6]))


# The models, written from each file's "Model:" section. x is (m,) or, for Nelson, (m, 2).
MODELS: dict[str, Model] = {
    "Misra1a": lambda b, x: b[0] * (1 - torch.exp(-b[1] * x)),
    "Chwirut2": lambda b, x: torch.exp(-b[0] * x) / (b[1] + b[2] * x),
    "Chwirut1": lambda b, x: torch.exp(-b[0] * x) / (b[1] + b[2] * x),
    "Lanczos3": _lanczos,
    "Gauss1": _gauss,
    "Gauss2": _gauss,
    "DanWood": lambda b, x: b[0] * x ** b[1],
    "Misra1b": lambda b, x: b[0] * (1 - (1 + b[1] * x / 2) ** (-2)),
    "Kirby2": lambda b, x: _rational(b, x, 3),
    "Hahn1": lambda b, x: _rational(b, x, 4),
    "Nelson": lambda b, x: b[0] - b[1] * x[:, 0] * torch.exp(-b[2] * x[:, 1]),
    "MGH17": lambda b, x: b[0] + b[1] * torch.exp(-x * b[3]) + b[2] * torch.exp(-x * b[4]),
    "Lanczos1": _lanczos,
    "Lanczos2": _lanczos,
    "Gauss3": _gauss,
    "Misra1c": lambda b, x: b[0] * (1 - (1 + 2 * b[1] * x) ** (-0.5)),
    "Misra1d": lambda b, x: b[0] * b[1] * x * (1 + b[1] * x) ** (-1),
    "Roszman1": lambda b, x: b[0] - b[1] * x - torch.atan(b[2] / (x - b[3])) / math.pi,
    "ENSO": _enso,
    "MGH09": lambda b, x: b[0] * (x**2 + x * b[1]) / (x**2 + x * b[2] + b[3]),
    "Thurber": lambda b, x: _rational(b, x, 4),
    "BoxBOD": lambda b, x: b[0] * (1 - torch.exp(-b[1] * x)),
    "Rat42": lambda b, x: b[0] / (1 + torch.exp(b[1] - b[2] * x)),
    "MGH10": lambda b, x: b[0] * torch.exp(b[1] / (x + b[2])),
    "Eckerle4": lambda b, x: (b[0] / b[1]) * torch.exp(-0.5 * ((x - b[2]) / b[1]) ** 2),
    "Rat43": lambda b, x: b[0] / ((1 + torch.exp(b[1] - b[2] * x)) ** (1 / b[3])),
    "Bennett5": lambda b, x: b[0] * (b[1] + x) ** (-1 / b[2]),
}
# Nelson's model is for log(y): the response is transformed before fitting.
_LOG_RESPONSE = frozenset({"Nelson"})


@dataclass(frozen=True)
class NistProblem:
    """One StRD problem as parsed from its ``.dat`` file.

    Attributes:
        name: e.g. ``"Misra1a"``.
        difficulty: ``"Lower"``, ``"Average"`` or ``"Higher"``.
        model_text: the file's "Model:" section.
        starts: the two starting points (Start 1, Start 2).
        certified: certified parameter values b*.
        certified_sd: their certified standard deviations.
        certified_rss: certified residual sum of squares.
        y: the response, (m,).
        x: the predictors, (m, k) with k = 1 except for Nelson (2).
    """

    name: str
    difficulty: str
    model_text: str
    starts: tuple[tuple[float, ...], tuple[float, ...]]
    certified: tuple[float, ...]
    certified_sd: tuple[float, ...]
    certified_rss: float
    y: tuple[float, ...]
    x: tuple[tuple[float, ...], ...]

    @property
    def n_params(self) -> int:
        return len(self.certified)

    @property
    def n_obs(self) -> int:
        return len(self.y)

    def residual_fn(self, dtype: torch.dtype = torch.float64,
                    device: str | torch.device = "cpu") -> Callable[[torch.Tensor], torch.Tensor]:
        """``r(b) = model(b, x) − y`` (y → log y for Nelson) as a torch function.

        Example:
            >>> prob = load("DanWood")
            >>> prob.residual_fn()(torch.tensor(prob.starts[0], dtype=torch.float64)).shape
            torch.Size([6])
        """
        model = MODELS[self.name]
        x = torch.tensor(self.x, dtype=dtype, device=device)
        x = x[:, 0] if x.shape[1] == 1 else x
        y = torch.tensor(self.y, dtype=dtype, device=device)
        if self.name in _LOG_RESPONSE:
            y = torch.log(y)
        return lambda b: model(b, x) - y


_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def _line_range(text: str, label: str) -> tuple[int, int]:
    match = re.search(label + r"\s*\(lines\s+(\d+)\s+to\s+(\d+)\)", text)
    if match is None:
        raise DataError(f"NIST file: no '{label} (lines a to b)' in the header")
    return int(match.group(1)), int(match.group(2))


def parse(text: str, name: str = "?") -> NistProblem:
    """Parse the text of a NIST StRD nonlinear regression ``.dat`` file.

    Raises:
        DataError: when a section is missing or malformed.
    """
    lines = text.splitlines()
    model = re.search(r"^Model:(.*?)^\s*Starting [Vv]alues", text, re.S | re.M)
    difficulty = re.search(r"(Lower|Average|Higher) Level of Difficulty", text)
    rss = re.search(r"Residual Sum of Squares:\s*(" + _NUMBER + ")", text)
    params = [[float(v) for v in re.findall(_NUMBER, m.group(2))]
              for m in re.finditer(r"^\s*b(\d+)\s*=\s*(.*)$", text, re.M)]
    if model is None or difficulty is None or rss is None or not params or any(len(p) != 4 for p in params):
        raise DataError(f"NIST file {name}: missing model, difficulty, parameter table or residual sum of squares")
    first, last = _line_range(text, "Data")
    rows = [[float(v) for v in lines[i - 1].split()] for i in range(first, last + 1)]
    if not rows or len({len(row) for row in rows}) != 1 or len(rows[0]) < 2:
        raise DataError(f"NIST file {name}: data lines {first}-{last} are not a numeric table")
    cols = list(zip(*rows, strict=True))
    return NistProblem(
        name=name, difficulty=difficulty.group(1),
        model_text="\n".join(line.strip() for line in model.group(1).strip().splitlines() if line.strip()),
        starts=(tuple(p[0] for p in params), tuple(p[1] for p in params)),
        certified=tuple(p[2] for p in params), certified_sd=tuple(p[3] for p in params),
        certified_rss=float(rss.group(1)), y=tuple(cols[0]), x=tuple(zip(*cols[1:], strict=True)),
    )


def _data_dir() -> Any:
    return resources.files("ravine") / "data" / "nist"


def names() -> list[str]:
    """The 27 problem names, in NIST's order (lower, average, higher difficulty)."""
    return list(MODELS)


def load(name: str) -> NistProblem:
    """Load and parse one bundled problem by name (case-insensitive)."""
    lookup = {k.lower(): k for k in MODELS}
    if name.lower() not in lookup:
        raise unknown_name("NIST problem", name, MODELS)
    key = lookup[name.lower()]
    return parse((_data_dir() / f"{key}.dat").read_text(), key)


def lre(value: float, certified: float, cap: float = LRE_CAP) -> float:
    """Log relative error: correct significant digits of ``value`` against ``certified``, in [0, cap].

    Example:
        >>> round(lre(1.000001, 1.0), 6)
        6.0
        >>> lre(float("nan"), 1.0)
        0.0
    """
    if not math.isfinite(value):
        return 0.0
    err = abs(value - certified) / abs(certified) if certified != 0 else abs(value)
    if err == 0.0:
        return cap
    return float(min(max(-math.log10(err), 0.0), cap))


# ---------------------------------------------------------------- the benchmark

# Same tolerances for every solver, tight enough for ~10 correct digits (NIST's
# own runs ask for as many digits as the certified values carry).
FTOL, XTOL, GTOL = 1e-15, 1e-12, 1e-15
METHOD_SOLVERS = {
    "lm": ("ravine-lm", "scipy-lm-fd", "scipy-lm-exact"),
    "gn": ("ravine-gn", "scipy-lm-fd", "scipy-lm-exact"),
    "levenberg": ("ravine-levenberg", "scipy-lm-fd", "scipy-lm-exact"),
    "all": SOLVERS,
}


def max_nfev(n_params: int) -> int:
    """The evaluation budget of one run, the same for every solver: max(1000, 100 n²)."""
    return max(1000, 100 * n_params**2)


def _ravine_run(prob: NistProblem, start: int, method: str, device: torch.device) -> dict[str, Any]:
    from ravine.optim.levenberg_marquardt import least_squares

    fn = prob.residual_fn(torch.float64, device)
    x0 = torch.tensor(prob.starts[start], dtype=torch.float64, device=device)
    res = least_squares(fn, x0, method=method, ftol=FTOL, xtol=XTOL, gtol=GTOL, max_nfev=max_nfev(prob.n_params))
    return {"params": res.x.tolist(), "rss": 2 * res.cost, "nfev": res.nfev, "calls": res.nfev, "njev": res.njev,
            "nit": res.nit,
            "success": res.success, "status": res.status, "message": res.message}


def _scipy_run(prob: NistProblem, start: int, exact: bool) -> dict[str, Any]:
    from scipy.optimize import least_squares as scipy_least_squares

    from ravine.optim._jacobian import flat_jacobian

    fn = prob.residual_fn(torch.float64, "cpu")
    calls = [0]

    def residuals(b: np.ndarray) -> np.ndarray:
        calls[0] += 1
        return fn(torch.from_numpy(b)).numpy()

    jac: Any = (lambda b: flat_jacobian(fn, torch.from_numpy(b))[1].numpy()) if exact else "2-point"
    res = scipy_least_squares(residuals, np.array(prob.starts[start]), jac=jac, method="lm", ftol=FTOL, xtol=XTOL,
                              gtol=GTOL, max_nfev=max_nfev(prob.n_params))
    # SciPy's nfev leaves out the finite-difference calls; "calls" counts every residual evaluation.
    return {"params": res.x.tolist(), "rss": 2 * float(res.cost), "nfev": int(res.nfev), "calls": calls[0],
            "njev": int(res.njev) if res.njev is not None else 0, "nit": None, "success": bool(res.success),
            "status": int(res.status), "message": str(res.message)}


def _warm_up() -> None:
    """Pay the one-time imports (torch.func's transforms, SciPy's MINPACK) before any run is timed.

    Without it the first solver timed (ravine's, which runs first) carried seconds of imports
    that the others did not.
    """
    from scipy.optimize import least_squares as scipy_least_squares

    from ravine.optim._jacobian import flat_jacobian

    flat_jacobian(lambda b: b * b, torch.ones(2, dtype=torch.float64))
    scipy_least_squares(lambda b: b - 1.0, np.zeros(2), method="lm")


def run_one(prob: NistProblem, start: int, solver: str, device: torch.device) -> dict[str, Any]:
    """One problem from one start (0 or 1) with one solver: a row of ``nist.json``."""
    t0 = time.perf_counter()
    try:
        if solver.startswith("ravine-"):
            key = {"ravine-lm": "lm", "ravine-gn": "gn", "ravine-levenberg": "levenberg"}[solver]
            out = _ravine_run(prob, start, key, device)
        else:
            out = _scipy_run(prob, start, exact=solver == "scipy-lm-exact")
    except (ValueError, ArithmeticError, RuntimeError, np.linalg.LinAlgError) as exc:  # a failed run is a result
        out = {"params": [math.nan] * prob.n_params, "rss": math.nan, "nfev": None, "calls": None, "njev": None,
               "nit": None,
               "success": False, "status": -1, "message": f"{type(exc).__name__}: {exc}"}
    elapsed = time.perf_counter() - t0
    per_param = [lre(b, c) for b, c in zip(out["params"], prob.certified, strict=True)]
    return {"problem": prob.name, "start": start + 1, "difficulty": prob.difficulty, "solver": solver,
            "n_params": prob.n_params, "n_obs": prob.n_obs, "lre_params": min(per_param),
            "lre_per_param": per_param, "lre_rss": lre(out["rss"], prob.certified_rss),
            "solved": min(per_param) >= 6.0, "time": elapsed, **out}


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per solver: runs, runs with LRE ≥ 6 (``solved``), median nfev / njev / calls, total time, unsolved runs.

    ``nfev`` is each solver's own count (SciPy's leaves out finite-difference
    evaluations); ``calls`` counts every evaluation of the residual function.
    """
    out: dict[str, dict[str, Any]] = {}
    for solver in dict.fromkeys(row["solver"] for row in rows):
        mine = [row for row in rows if row["solver"] == solver]
        nfev = [row["nfev"] for row in mine if row["nfev"] is not None]
        njev = [row["njev"] for row in mine if row["njev"] is not None]
        calls = [row["calls"] for row in mine if row["calls"] is not None]
        out[solver] = {
            "runs": len(mine), "solved": sum(row["solved"] for row in mine),
            "median_nfev": statistics.median(nfev) if nfev else None,
            "median_njev": statistics.median(njev) if njev else None,
            "median_calls": statistics.median(calls) if calls else None,
            "time": sum(row["time"] for row in mine),
            "unsolved": [f"{row['problem']}/{row['start']}" for row in mine if not row["solved"]],
        }
    return out


def run(method: str = "lm", problems: Sequence[str] | None = None, seed: int = 0, device: str = "cpu",
        progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the suite: every problem from both starts with ravine's ``method`` and SciPy's LM, side by side.

    Args:
        method: ``"lm"``, ``"gn"``, ``"levenberg"`` or ``"all"`` (the three ravine methods).
        problems: a subset of :func:`names` (default: all 27).
        seed: recorded; the solvers are deterministic.
        device: where ravine's solver runs (SciPy runs on the CPU).
        progress: called with a label after each run.

    Returns:
        ``{"suite", "method", "seed", "device", "dtype", "tolerances", "solvers", "runs": [row, ...],
        "summary": {solver: {...}}, "wall_time"}``; a row is :func:`run_one`'s dict.

    Example:
        >>> out = run("lm", problems=["Misra1a"])
        >>> out["summary"]["ravine-lm"]["solved"]
        2
    """
    from ravine.utils import resolve_device

    if method not in METHOD_SOLVERS:
        raise unknown_name("method", method, METHOD_SOLVERS)
    dev = resolve_device(device)
    chosen = [load(name) for name in (problems if problems else names())]
    solvers = METHOD_SOLVERS[method]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny problems: a thread pool only adds overhead (restored below)
    _warm_up()
    t0 = time.perf_counter()
    rows = []
    try:
        for prob in chosen:
            for start in (0, 1):
                for solver in solvers:
                    rows.append(run_one(prob, start, solver, dev))
                    if progress is not None:
                        progress(f"{prob.name}/{start + 1} {solver}")
    finally:
        torch.set_num_threads(threads)
    return {"suite": "nist", "method": method, "seed": seed, "device": str(dev), "dtype": "float64",
            "tolerances": {"ftol": FTOL, "xtol": XTOL, "gtol": GTOL, "max_nfev": "max(1000, 100 n^2)"},
            "solvers": list(solvers), "runs": rows, "summary": summarize(rows),
            "wall_time": time.perf_counter() - t0}
