"""ravine.linsys CG against scipy.sparse.linalg.cg and the direct solvers, side by side.

    python benchmarks/linsys_vs_scipy.py [--sizes 200,500,1000] [--kappa 1e3] [--repeats 5] [--out FILE]

On the same float64 SPD system (κ fixed, Chebyshev spectrum) and the same relative tolerance 1e-8, times
(median of repeats, the contenders taking turns): ravine's CG (torch), SciPy's CG (NumPy, dense A),
torch.linalg.solve (LU) and ravine's Cholesky; reports iterations and the final relative residual of
each. Writes JSON (default benchmarks/results/linsys_vs_scipy.json). Nothing here is a test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import scipy.sparse.linalg
import torch

from ravine import linsys


def _scipy_cg(A: np.ndarray, b: np.ndarray, tol: float) -> tuple[np.ndarray, int]:
    count = [0]

    def callback(xk: np.ndarray) -> None:
        count[0] += 1

    x, info = scipy.sparse.linalg.cg(A, b, rtol=tol, maxiter=100_000, callback=callback)
    return x, count[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200,500,1000")
    parser.add_argument("--kappa", type=float, default=1e3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tol", type=float, default=1e-8)
    parser.add_argument("--out", default="benchmarks/results/linsys_vs_scipy.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        s = linsys.spd(n, args.kappa, seed=0, spectrum="chebyshev")
        A_np, b_np = s.A.numpy(), s.b.numpy()
        contenders = {
            "ravine cg": lambda: linsys.cg(s.A, s.b, tol=args.tol),
            "scipy cg": lambda: _scipy_cg(A_np, b_np, args.tol),
            "torch.linalg.solve": lambda: torch.linalg.solve(s.A, s.b),
            "ravine cholesky": lambda: linsys.cholesky(s.A, s.b),
        }
        times: dict[str, list[float]] = {k: [] for k in contenders}
        last: dict[str, object] = {}
        for _ in range(args.repeats + 1):  # round robin; the first round is a warm-up
            for name, fn in contenders.items():
                t = time.perf_counter()
                last[name] = fn()
                times[name].append(time.perf_counter() - t)
        ours = last["ravine cg"]
        x_sp, it_sp = last["scipy cg"]
        res = lambda x: float(np.linalg.norm(b_np - A_np @ np.asarray(x)) / np.linalg.norm(b_np))  # noqa: E731
        row = {"n": n, "kappa": args.kappa,
               "median_s": {k: statistics.median(v[1:]) for k, v in times.items()},
               "iterations": {"ravine cg": ours.iterations, "scipy cg": it_sp},
               "final_residual": {"ravine cg": res(ours.x.numpy()), "scipy cg": res(x_sp)}}
        rows.append(row)
        print(json.dumps(row))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": "1 torch thread", "rows": rows}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
