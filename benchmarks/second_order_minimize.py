"""Benchmark 4(b): ravine's BFGS / L-BFGS / Newton-CG vs ``scipy.optimize.minimize``.

Same methods, exact derivatives on both sides, same stopping rule ‖∇f‖∞ ≤ GTOL, float64:

- ravine: ``ravine.optim.minimize(fn, x0, method, gtol=GTOL)`` with autograd derivatives.
- SciPy: ``BFGS`` (jac), ``L-BFGS-B`` (jac, maxcor=10, ftol=0 so that only the gradient test
  stops it), ``Newton-CG`` (jac + exact Hessian-vector product; it has no gradient test, so a
  callback stops it at the first iterate with ‖∇f‖∞ ≤ GTOL, reading the gradient SciPy already
  evaluated). SciPy gets NumPy oracles (``rosen``/``rosen_der``/``rosen_hess_prod``, hand-written
  logistic-regression derivatives), which is the fastest way to drive it.
- SciPy again with the same torch functions as ravine (f, ∇f, Hv by autograd, converted to NumPy),
  which separates the algorithms' overhead from NumPy-vs-autograd evaluation cost.
- ``torch.optim.LBFGS`` (strong Wolfe, history 10, one ``step`` with max_iter=MAX_ITER): the
  reference for the "reuse torch's L-BFGS?" decision.

Problems: n-D Rosenbrock (n = 10, 100; x0 = (−1.2, 1, −1.2, 1, ...)) and L2-regularized logistic
regression on scikit-learn's breast-cancer data (standardized, bias column, λ = 1e-3, 31 weights).

Reports per run: nfev, njev, nit, final ‖∇f‖∞, success, median wall time over REPEATS; writes
``benchmarks/results/second_order_minimize.json`` and prints a table with ravine/SciPy ratios.

Run: ``python benchmarks/second_order_minimize.py [--repeats 5] [--seed 0]``
"""

from __future__ import annotations

import os

# Single-threaded on both sides: small problems gain nothing from threads, and on a shared machine
# thread contention, not the method, dominated the time (measured: 60x slower with 2 threads).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy
import scipy.optimize as so
import torch
from sklearn.datasets import load_breast_cancer

from ravine.optim.minimization import minimize

GTOL = 1e-5
MAX_ITER = 20000
LAMBDA = 1e-3
OUT = Path(__file__).parent / "results" / "second_order_minimize.json"
PAIRS = [("bfgs", "BFGS"), ("lbfgs", "L-BFGS-B"), ("newton-cg", "Newton-CG")]


def rosen_torch(x: torch.Tensor) -> torch.Tensor:
    """n-D Rosenbrock, Σ 100 (x_{i+1} − x_i²)² + (1 − x_i)² (SciPy's ``rosen``)."""
    return (100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2).sum()


def rosenbrock_problem(n: int) -> dict[str, Any]:
    x0 = np.where(np.arange(n) % 2 == 0, -1.2, 1.0)
    return {"name": f"rosenbrock-{n}", "n": n, "x0": x0, "torch_fn": rosen_torch,
            "f": so.rosen, "grad": so.rosen_der, "hessp": so.rosen_hess_prod}


def logreg_problem(seed: int) -> dict[str, Any]:
    del seed  # deterministic data; kept for the seed convention
    data = load_breast_cancer()
    X = (data.data - data.data.mean(0)) / data.data.std(0)
    X = np.hstack([X, np.ones((X.shape[0], 1))])
    y = np.where(data.target == 1, 1.0, -1.0)
    m = X.shape[0]
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)

    def torch_fn(w: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.softplus(-yt * (Xt @ w)).mean() + 0.5 * LAMBDA * (w @ w)

    def f(w: np.ndarray) -> float:
        return float(np.logaddexp(0.0, -y * (X @ w)).mean() + 0.5 * LAMBDA * w @ w)

    def grad(w: np.ndarray) -> np.ndarray:
        sig = 0.5 * (1.0 + np.tanh(0.5 * (-y * (X @ w))))  # σ(−y xᵀw), overflow-free
        return X.T @ (-y * sig) / m + LAMBDA * w

    def hessp(w: np.ndarray, v: np.ndarray) -> np.ndarray:
        s = 0.5 * (1.0 + np.tanh(0.5 * (X @ w)))
        return X.T @ (s * (1 - s) * (X @ v)) / m + LAMBDA * v

    return {"name": "logreg-breast-cancer", "n": X.shape[1], "x0": np.zeros(X.shape[1]), "torch_fn": torch_fn,
            "f": f, "grad": grad, "hessp": hessp}


def torch_oracles(prob: dict[str, Any]) -> dict[str, Any]:
    """The problem with f, ∇f, Hv computed by autograd from ``torch_fn`` (NumPy in, NumPy out)."""
    fn = prob["torch_fn"]

    def f(x: np.ndarray) -> float:
        with torch.no_grad():
            return float(fn(torch.from_numpy(x)))

    def grad(x: np.ndarray) -> np.ndarray:
        xt = torch.from_numpy(x).requires_grad_(True)
        (g,) = torch.autograd.grad(fn(xt), xt)
        return g.numpy()

    def hessp(x: np.ndarray, v: np.ndarray) -> np.ndarray:
        xt = torch.from_numpy(x).requires_grad_(True)
        (g,) = torch.autograd.grad(fn(xt), xt, create_graph=True)
        (hv,) = torch.autograd.grad(g, xt, grad_outputs=torch.from_numpy(v))
        return hv.numpy()

    return {**prob, "f": f, "grad": grad, "hessp": hessp, "oracle_grad": prob["grad"]}


def run_ravine(prob: dict[str, Any], method: str) -> dict[str, Any]:
    x0 = torch.as_tensor(prob["x0"], dtype=torch.float64)
    start = time.perf_counter()
    res = minimize(prob["torch_fn"], x0, method=method, gtol=GTOL, max_iter=MAX_ITER)
    elapsed = time.perf_counter() - start
    return {"nfev": res.nfev, "njev": res.njev, "nhev": res.extra["nhev"], "nit": res.nit, "time": elapsed,
            "grad_norm": float(np.abs(prob["grad"](res.x.numpy())).max()), "message": res.message}


def run_scipy(prob: dict[str, Any], method: str) -> dict[str, Any]:
    cache: dict[str, np.ndarray] = {}

    def jac(x: np.ndarray) -> np.ndarray:
        g = prob["grad"](x)
        cache["x"], cache["g"] = x.copy(), g
        return g

    def stop_at_gtol(intermediate_result: so.OptimizeResult) -> None:
        x = intermediate_result.x
        g = cache["g"] if "x" in cache and np.array_equal(cache["x"], x) else prob["grad"](x)
        if np.abs(g).max() <= GTOL:
            raise StopIteration

    kwargs: dict[str, Any] = {"jac": jac}
    if method == "BFGS":
        kwargs["options"] = {"gtol": GTOL, "maxiter": MAX_ITER}
    elif method == "L-BFGS-B":
        kwargs["options"] = {"gtol": GTOL, "ftol": 0.0, "maxcor": 10, "maxiter": MAX_ITER, "maxfun": 10 * MAX_ITER}
    else:
        kwargs.update(hessp=prob["hessp"], callback=stop_at_gtol, options={"xtol": 1e-14, "maxiter": MAX_ITER})
    start = time.perf_counter()
    res = so.minimize(prob["f"], prob["x0"].copy(), method=method, **kwargs)
    elapsed = time.perf_counter() - start
    return {"nfev": int(res.nfev), "njev": int(res.get("njev", 0)), "nhev": int(res.get("nhev", 0)),
            "nit": int(res.nit), "time": elapsed,
            "grad_norm": float(np.abs(prob.get("oracle_grad", prob["grad"])(res.x)).max()),
            "message": str(res.message)}


def run_torch_lbfgs(prob: dict[str, Any]) -> dict[str, Any]:
    x = torch.tensor(prob["x0"], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([x], lr=1.0, max_iter=MAX_ITER, max_eval=10 * MAX_ITER, tolerance_grad=GTOL,
                            tolerance_change=0.0, history_size=10, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = prob["torch_fn"](x)
        loss.backward()
        return loss

    start = time.perf_counter()
    opt.step(closure)
    elapsed = time.perf_counter() - start
    state = opt.state[x]
    return {"nfev": state["func_evals"], "njev": state["func_evals"], "nhev": 0, "nit": state["n_iter"],
            "time": elapsed, "grad_norm": float(np.abs(prob["grad"](x.detach().numpy())).max()), "message": ""}


def median_run(runner: Callable[[], dict[str, Any]], repeats: int) -> dict[str, Any]:
    runner()  # warm-up: imports, allocator, autograd caches
    runs = [runner() for _ in range(repeats)]
    out = dict(runs[0])
    out["time"] = statistics.median(r["time"] for r in runs)
    out["times"] = [r["time"] for r in runs]
    out["success"] = out["grad_norm"] <= GTOL
    return out


def main(repeats: int = 5, seed: int = 0, out: Path = OUT) -> dict[str, Any]:
    torch.manual_seed(seed)  # nothing random is drawn; fixed for the convention
    torch.set_num_threads(1)
    problems = [rosenbrock_problem(10), rosenbrock_problem(100), logreg_problem(seed)]
    rows = []
    for prob in problems:
        tprob = torch_oracles(prob)
        for ours, theirs in PAIRS:
            r = median_run(lambda: run_ravine(prob, ours), repeats)
            peers = [(theirs, median_run(lambda: run_scipy(prob, theirs), repeats)),
                     (f"{theirs} (torch f/g)", median_run(lambda: run_scipy(tprob, theirs), repeats))]
            if ours == "lbfgs":
                peers.append(("torch.optim.LBFGS", median_run(lambda: run_torch_lbfgs(prob), repeats)))
            for peer_name, s in peers:
                rows.append({"problem": prob["name"], "n": prob["n"], "method": ours, "ravine": r,
                             "peer": peer_name, "scipy": s,
                             "nfev_ratio": r["nfev"] / max(s["nfev"], 1), "time_ratio": r["time"] / s["time"]})
    result = {"gtol": GTOL, "repeats": repeats, "dtype": "float64", "threads": torch.get_num_threads(),
              "torch": torch.__version__, "scipy": scipy.__version__, "rows": rows}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print_table(rows)
    return result


def print_table(rows: list[dict[str, Any]]) -> None:
    head = (f"{'problem':22} {'method':10} {'peer':24} {'nfev r/p':>11} {'nit r/p':>11} "
            f"{'time r/p (ms)':>17} {'nfev x':>7} {'time x':>7} ok")
    print(head)
    print("-" * len(head))
    for row in rows:
        r, s = row["ravine"], row["scipy"]
        print(f"{row['problem']:22} {row['method']:10} {row['peer']:24} "
              f"{r['nfev']:>5}/{s['nfev']:<5} {r['nit']:>5}/{s['nit']:<5} "
              f"{1e3 * r['time']:>8.1f}/{1e3 * s['time']:<8.1f} {row['nfev_ratio']:>7.2f} {row['time_ratio']:>7.2f} "
              f"{'y' if r['success'] else 'n'}{'y' if s['success'] else 'n'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    main(args.repeats, args.seed, args.out)
