"""Benchmark: ravine.curvature against PyHessian and curvlinops on an MLP 784-256-10, batch 512.

Model: ``Linear(784, 256) – ReLU – Linear(256, 10)`` (203 530 parameters, float32), random
inputs N(0, 1) and random labels (seeded), mean cross-entropy, one batch of 512. Every
contender builds its own operator inside the timed region (graph, data pass), so the times
are end to end. Reference eigenvalues: SciPy ``eigsh`` with ``tol=0`` on ravine's operator.

1. **top-1 eigenvalue to 1e-4 relative**: ravine (``eigenvalues(k=1, tol=1e-4)``, its torch
   Lanczos), PyHessian 0.1 power iteration (``hessian(...).eigenvalues(top_n=1, tol=t)`` for
   t = 1e-3 … 1e-6; the first t whose *achieved* error is ≤ 1e-4 is "PyHessian at that
   accuracy"), curvlinops 3 ``HessianLinearOperator(...).to_scipy()`` + ``eigsh(k=1, tol=1e-4)``.
2. **smallest eigenvalue to 1e-4 relative**: ravine (``which="smallest"``) vs curvlinops + ``eigsh``
   (``which="SA"``); PyHessian cannot compute it.
3. **trace at equal budgets**: relative error |est − tr H| / tr H of ravine's default
   (``method="auto"``), Hutch++ and Hutchinson vs curvlinops' ``hutchpp_trace`` at each budget,
   mean and max over seeds, with ravine's stated standard error and how often the error is
   within 1.96 of them. The exact trace
   is written out: for a ReLU network the diagonal blocks of H equal those of the Gauss–Newton
   matrix (relu'' = 0), so with Λₙ = diag(pₙ) − pₙpₙᵀ (softmax Hessian), hₙ the hidden layer,
   mₙ its ReLU mask, W₂ the output weights:
       tr H = (1/N) Σₙ [ tr Λₙ (‖hₙ‖² + 1) + (‖xₙ‖² + 1) Σⱼ mₙⱼ (W₂ᵀ Λₙ W₂)ⱼⱼ ].
   (Checked against the dense Hessian on a 20-16-10 model at start-up.)
4. **peak RSS** of the top-1 computation, ravine vs PyHessian (and curvlinops), each in a fresh
   child process, three times interleaved (median of the absolute peak, VmHWM, and of its
   increase over the set-up; ``ratio_peak_vs_pyhessian``).

Times are medians over ``--repeats`` runs, contenders interleaved so they share the machine's
noise; torch single-threaded (``--threads``). Needs curvlinops and PyHessian in the same venv
(see docs/curvature.md for a venv that keeps torch 2.13.0); a missing peer is reported
as ``null`` with the reason.

Usage::

    python benchmarks/curvature.py                      # JSON to benchmarks/results/curvature.json
    python benchmarks/curvature.py --quick              # 1 repeat, small trace budgets
    python benchmarks/curvature.py --only top1 smallest --repeats 5
"""

from __future__ import annotations

import argparse
import os
import sys

_threads = "1"
for _i, _arg in enumerate(sys.argv):  # pin BLAS threads before torch loads
    if _arg == "--threads" and _i + 1 < len(sys.argv):
        _threads = sys.argv[_i + 1]
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, _threads)

import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.sparse.linalg import LinearOperator, eigsh  # noqa: E402
from torch import nn  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ravine import curvature  # noqa: E402

TARGET = 1e-4


def build(sizes: tuple[int, ...] = (784, 256, 10), n: int = 512, seed: int = 0) -> tuple[nn.Module, tuple]:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(sizes[0], sizes[1]), nn.ReLU(), nn.Linear(sizes[1], sizes[2]))
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(n, sizes[0], generator=gen)
    y = torch.randint(0, sizes[2], (n,), generator=gen)
    return model, (x, y)


def exact_trace(model: nn.Sequential, data: tuple) -> float:
    """tr H of mean cross-entropy for Linear–ReLU–Linear, written out (see the module docstring)."""
    x, _ = data
    x = x.double()
    W1, b1 = model[0].weight.double(), model[0].bias.double()
    W2, b2 = model[2].weight.double(), model[2].bias.double()
    with torch.no_grad():
        pre = x @ W1.T + b1
        h = pre.clamp_min(0)
        mask = (pre > 0).double()
        p = torch.softmax(h @ W2.T + b2, dim=1)
        lam = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]          # (N, C, C)
        tr_lam = lam.diagonal(dim1=1, dim2=2).sum(1)
        w_lam_w = torch.einsum("cj,ncd,dj->nj", W2, lam, W2)                # (N, H): (W₂ᵀΛW₂)ⱼⱼ
        per = tr_lam * ((h ** 2).sum(1) + 1) + ((x ** 2).sum(1) + 1) * (mask * w_lam_w).sum(1)
    return float(per.mean())


def check_exact_trace() -> float:
    model, data = build((20, 16, 10), n=64, seed=3)
    dense = curvature.hessian(model.double(), nn.functional.cross_entropy, (data[0].double(), data[1]))
    model = model.float()
    ref = float(torch.trace(dense))
    return abs(exact_trace(model, data) - ref) / abs(ref)


class Counting(LinearOperator):
    """A SciPy LinearOperator that counts products (for the peers' eigsh)."""

    def __init__(self, inner: Any) -> None:
        super().__init__(dtype=np.float64, shape=inner.shape)
        self.inner = inner
        self.count = 0

    def _matvec(self, x: np.ndarray) -> np.ndarray:
        self.count += 1
        return np.asarray(self.inner.matvec(np.asarray(x, dtype=self.inner.dtype)), dtype=np.float64).reshape(x.shape)

    def _rmatvec(self, x: np.ndarray) -> np.ndarray:
        return self._matvec(x)


def timed(fn: Callable[[], tuple[float, int]]) -> dict[str, float]:
    t0 = time.perf_counter()
    value, products = fn()
    return {"time_s": time.perf_counter() - t0, "value": value, "products": products}


# ------------------------------------------------------------------------------- contenders


def ravine_top(model: nn.Module, data: tuple, which: str = "largest", method: str = "lanczos") -> tuple[float, int]:
    res = curvature.eigenvalues(model, nn.functional.cross_entropy, data, k=1, which=which, tol=TARGET,
                                method=method)
    return float(res.values[0]), res.n_products


def pyhessian_top(model: nn.Module, data: tuple, tol: float) -> tuple[float, int]:
    import pyhessian  # noqa: F401 - its package __init__ shadows the submodule name with the class

    ph = sys.modules["pyhessian.hessian"]
    count = {"n": 0}
    original = ph.hessian_vector_product

    def counting(*args: Any, **kwargs: Any) -> Any:
        count["n"] += 1
        return original(*args, **kwargs)

    ph.hessian_vector_product = counting
    try:
        comp = ph.hessian(model, nn.CrossEntropyLoss(), data=data, cuda=False)
        vals, _ = comp.eigenvalues(maxIter=1000, tol=tol, top_n=1)
    finally:
        ph.hessian_vector_product = original
    return float(vals[0]), count["n"]


def curvlinops_op(model: nn.Module, data: tuple) -> Any:
    from curvlinops import HessianLinearOperator

    return HessianLinearOperator(model, nn.CrossEntropyLoss(), [p for p in model.parameters() if p.requires_grad],
                                 [data], check_deterministic=False)


def curvlinops_eig(model: nn.Module, data: tuple, which: str) -> tuple[float, int]:
    lin = Counting(curvlinops_op(model, data).to_scipy())
    v0 = np.random.default_rng(0).standard_normal(lin.shape[0])
    val = eigsh(lin, k=1, which={"largest": "LA", "smallest": "SA"}[which], tol=TARGET, v0=v0)[0][0]
    return float(val), lin.count


def reference(model: nn.Module, data: tuple, which: str) -> tuple[float, int]:
    op = curvature.HessianOperator(model, nn.functional.cross_entropy, data)
    v0 = np.random.default_rng(1).standard_normal(op.size)
    val = eigsh(op.to_scipy(), k=1, which={"largest": "LA", "smallest": "SA"}[which], tol=0, v0=v0)[0][0]
    return float(val), op.n_products


def available(name: str) -> str | None:
    try:
        __import__(name)
        return None
    except Exception as exc:  # noqa: BLE001 - any import failure means "not available", with the reason
        return f"{type(exc).__name__}: {exc}"


# ------------------------------------------------------------------------------- sections


def bench_eigen(which: str, repeats: int, model: nn.Module, data: tuple) -> dict[str, Any]:
    ref_value, ref_products = reference(model, data, which)
    contenders: dict[str, Callable[[], tuple[float, int]]] = {
        "ravine": lambda: ravine_top(model, data, which),
        "ravine_eigsh": lambda: ravine_top(model, data, which, method="eigsh"),
    }
    missing: dict[str, str] = {}
    if (why := available("curvlinops")) is None:
        contenders["curvlinops_eigsh"] = lambda: curvlinops_eig(model, data, which)
    else:
        missing["curvlinops_eigsh"] = why
    tols = (1e-3, 1e-4, 1e-5, 1e-6)
    if which == "largest":
        if (why := available("pyhessian")) is None:
            for t in tols:
                contenders[f"pyhessian_tol{t:g}"] = lambda t=t: pyhessian_top(model, data, t)
        else:
            missing["pyhessian"] = why
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():  # interleaved: the same noise for everyone
            runs[name].append(timed(fn))
    rows = {}
    for name, rs in runs.items():
        value = rs[0]["value"]
        rows[name] = {"time_s": statistics.median(r["time_s"] for r in rs), "products": rs[0]["products"],
                      "value": value, "rel_error": abs(value - ref_value) / abs(ref_value)}
    out: dict[str, Any] = {"reference": ref_value, "reference_products": ref_products, "rows": rows,
                           "missing": missing}
    if which == "largest":
        ok = [f"pyhessian_tol{t:g}" for t in tols if f"pyhessian_tol{t:g}" in rows
              and rows[f"pyhessian_tol{t:g}"]["rel_error"] <= TARGET]
        out["pyhessian_at_target"] = ok[0] if ok else None
        if ok:
            out["ratio_vs_pyhessian"] = rows["ravine"]["time_s"] / rows[ok[0]]["time_s"]
    if "curvlinops_eigsh" in rows:
        out["ratio_vs_curvlinops"] = rows["ravine"]["time_s"] / rows["curvlinops_eigsh"]["time_s"]
    return out


def bench_trace(budgets: list[int], seeds: int, model: nn.Module, data: tuple) -> dict[str, Any]:
    exact = exact_trace(model, data)
    rows: dict[str, dict[str, Any]] = {}
    have_peer = available("curvlinops") is None
    ours = {"ravine_auto": "auto", "ravine_hutchpp": "hutch++", "ravine_hutchinson": "hutchinson"}
    for budget in budgets:
        errs: dict[str, list[float]] = {name: [] for name in [*ours, "curvlinops_hutchpp"]}
        times: dict[str, list[float]] = {k: [] for k in errs}
        stderrs: dict[str, list[float]] = {k: [] for k in ours}
        for seed in range(seeds):
            for name, method in ours.items():
                t0 = time.perf_counter()
                est = curvature.trace(model, nn.functional.cross_entropy, data, n_products=budget, method=method,
                                      seed=seed)
                times[name].append(time.perf_counter() - t0)
                errs[name].append(abs(est.value - exact) / exact)
                stderrs[name].append(est.stderr / exact)
            if have_peer:
                from curvlinops import hutchpp_trace

                torch.manual_seed(seed)
                t0 = time.perf_counter()
                # curvlinops wants a multiple of 3 (its thirds): the nearest one below the budget
                val = float(hutchpp_trace(curvlinops_op(model, data), num_matvecs=budget - budget % 3))
                times["curvlinops_hutchpp"].append(time.perf_counter() - t0)
                errs["curvlinops_hutchpp"].append(abs(val - exact) / exact)
        rows[str(budget)] = {name: {"mean_rel_error": statistics.fmean(e), "max_rel_error": max(e),
                                    "median_time_s": statistics.median(times[name])}
                             for name, e in errs.items() if e}
        for name in ours:
            rows[str(budget)][name]["mean_stderr_rel"] = statistics.fmean(stderrs[name])
            rows[str(budget)][name]["within_1.96_stderr"] = statistics.fmean(
                float(e <= 1.96 * s) for e, s in zip(errs[name], stderrs[name], strict=True))
    return {"exact": exact, "budgets": rows, "seeds": seeds}


def _peak_rss_mib() -> float:
    """The process's peak RSS: VmHWM (ru_maxrss is inherited from the parent across fork + exec on Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_rss(kind: str) -> dict[str, float]:
    """Run in a fresh process: peak RSS (MiB) before and after one top-1 computation."""
    model, data = build()
    loss = nn.functional.cross_entropy(model(data[0]), data[1])  # warm the allocator like both contenders do
    del loss
    before = _peak_rss_mib()
    if kind == "ravine":
        ravine_top(model, data)
    elif kind == "pyhessian":
        pyhessian_top(model, data, 1e-6)
    else:
        curvlinops_eig(model, data, "largest")
    after = _peak_rss_mib()
    return {"peak_mib": after, "increase_mib": after - before}


def bench_rss(repeats: int = 3) -> dict[str, Any]:
    """Each contender ``repeats`` times in fresh processes, interleaved; the median peak and its ratio."""
    runs: dict[str, list[dict[str, float]]] = {}
    out: dict[str, Any] = {}
    for _ in range(repeats):
        for kind in ("ravine", "pyhessian", "curvlinops"):
            if kind != "ravine" and available(kind) is not None:
                out[kind] = None
                continue
            proc = subprocess.run([sys.executable, __file__, "--child", kind, "--threads", _threads],
                                  capture_output=True, text=True, timeout=1800)
            if proc.returncode != 0:
                out[kind] = proc.stderr[-500:]
                continue
            runs.setdefault(kind, []).append(json.loads(proc.stdout.strip().splitlines()[-1]))
    for kind, rs in runs.items():
        out[kind] = {"peak_mib": statistics.median(r["peak_mib"] for r in rs),
                     "increase_mib": statistics.median(r["increase_mib"] for r in rs),
                     "peaks_mib": [r["peak_mib"] for r in rs]}
    if isinstance(out.get("pyhessian"), dict):
        out["ratio_peak_vs_pyhessian"] = out["ravine"]["peak_mib"] / out["pyhessian"]["peak_mib"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--trace-budgets", type=int, nargs="+", default=[30, 99, 300])
    parser.add_argument("--trace-seeds", type=int, default=5)
    parser.add_argument("--only", nargs="+", default=["top1", "smallest", "trace", "rss"])
    parser.add_argument("--threads", default="1")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "curvature.json")
    args = parser.parse_args()
    torch.set_num_threads(int(args.threads))
    if args.child:
        print(json.dumps(child_rss(args.child)))
        return
    if args.quick:
        args.repeats, args.trace_budgets, args.trace_seeds = 1, [30, 99], 2
    model, data = build()
    result: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "threads": args.threads,
                    "cpu": platform.processor() or platform.machine(), "note": "shared machine: times are noisy"},
        "model": "MLP 784-256-10 ReLU, float32, 203530 parameters, batch 512 random N(0,1), random labels",
        "exact_trace_formula_check_rel_error": check_exact_trace(),
    }
    for section in args.only:
        t0 = time.perf_counter()
        if section == "top1":
            result["top1"] = bench_eigen("largest", args.repeats, model, data)
        elif section == "smallest":
            result["smallest"] = bench_eigen("smallest", args.repeats, model, data)
        elif section == "trace":
            result["trace"] = bench_trace(args.trace_budgets, args.trace_seeds, model, data)
        elif section == "rss":
            result["rss"] = bench_rss()
        print(f"{section}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        print(json.dumps({section: result.get(section)}, indent=1), file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
