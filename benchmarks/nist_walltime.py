"""NIST StRD wall time: ravine's ``least_squares(method="lm")`` vs SciPy's MINPACK LM, same torch Jacobian.

Both solvers get the exact Jacobian from ``ravine.optim._jacobian.flat_jacobian`` (SciPy through
NumPy views), run at their DEFAULT tolerances except ``max_nfev`` (NIST's budget max(1000, 100 n²)),
one thread, interleaved run by run, after a warm-up that pays the one-time imports. Reports, per
repeat, the total wall time of each solver over the 54 runs, the time spent inside the Jacobian,
the runs with LRE ≥ 6, and the median over repeats.

    python benchmarks/nist_walltime.py [--repeats 3] [--out nist_walltime.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
from scipy.optimize import least_squares as scipy_least_squares

import ravine.optim._jacobian as jacobian_module
from ravine.bench import nist
from ravine.optim import least_squares


def _timed_jacobian(clock: list[float]):
    inner = jacobian_module.flat_jacobian

    def wrapped(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            clock[0] += time.perf_counter() - t0

    return inner, wrapped


def one_repeat() -> dict[str, float]:
    totals = {"ravine": 0.0, "scipy": 0.0}
    jac_time = {"ravine": [0.0], "scipy": [0.0]}
    solved = {"ravine": 0, "scipy": 0}
    import ravine.optim.levenberg_marquardt as lm_module

    for name in nist.names():
        prob = nist.load(name)
        fn = prob.residual_fn(torch.float64, "cpu")
        for start in (0, 1):
            budget = nist.max_nfev(prob.n_params)
            inner, wrapped = _timed_jacobian(jac_time["ravine"])
            lm_module.flat_jacobian = wrapped
            t0 = time.perf_counter()
            res = least_squares(fn, torch.tensor(prob.starts[start], dtype=torch.float64), max_nfev=budget)
            totals["ravine"] += time.perf_counter() - t0
            lm_module.flat_jacobian = inner
            x_ravine = res.x.tolist()

            clock = jac_time["scipy"]

            def jac(b: np.ndarray) -> np.ndarray:
                t1 = time.perf_counter()
                out = inner(fn, torch.from_numpy(b))[1].numpy()
                clock[0] += time.perf_counter() - t1
                return out

            t0 = time.perf_counter()
            sres = scipy_least_squares(lambda b: fn(torch.from_numpy(b)).numpy(), np.array(prob.starts[start]),
                                       jac=jac, method="lm", max_nfev=budget)
            totals["scipy"] += time.perf_counter() - t0
            for key, x in (("ravine", x_ravine), ("scipy", sres.x.tolist())):
                solved[key] += min(nist.lre(b, c) for b, c in zip(x, prob.certified, strict=True)) >= 6.0
    return {"ravine_s": totals["ravine"], "scipy_s": totals["scipy"], "ratio": totals["ravine"] / totals["scipy"],
            "ravine_jacobian_s": jac_time["ravine"][0], "scipy_jacobian_s": jac_time["scipy"][0],
            "ravine_solved": solved["ravine"], "scipy_solved": solved["scipy"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="nist_walltime.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    nist._warm_up()
    repeats = [one_repeat() for _ in range(args.repeats)]
    median = {key: statistics.median(r[key] for r in repeats) for key in repeats[0]}
    out = {"repeats": repeats, "median": median, "torch": torch.__version__}
    print(json.dumps(median, indent=1))
    with open(args.out, "w") as fh:
        json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
