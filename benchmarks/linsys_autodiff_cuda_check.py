"""Device check for ravine.linsys / autodiff / activations on CUDA (run on a GPU machine).

    PYTHONPATH=src python benchmarks/linsys_autodiff_cuda_check.py [OUT_DIR]

Compares every solver on CUDA with the CPU result on the same float64 systems (batched too), runs
gradcheck and the backward graph on a problem on CUDA, measures the activation table on CUDA, and
times CG against torch.linalg.solve for a batch of systems (median of repeats). Writes cuda_check.json.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import torch

from ravine import activations, autodiff, linsys, problems
from ravine.linsys import study


def _median_time(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats + 1):
        torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times[1:])


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    assert torch.cuda.is_available(), "no CUDA device"
    report: dict = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "checks": {}}
    s = linsys.spd(400, 1e3, seed=0)
    gpu = linsys.spd(400, 1e3, seed=0, device="cuda")
    cmp_cpu = study.compare(s, list(study.METHODS))
    cmp_gpu = study.compare(gpu, list(study.METHODS))
    for name, row in cmp_gpu["methods"].items():
        ref = cmp_cpu["methods"][name]
        report["checks"][f"linsys {name}"] = {
            "status_gpu": row["status"], "status_cpu": ref["status"],
            "iterations_gpu": row.get("iterations"), "iterations_cpu": ref.get("iterations"),
            "final_residual_gpu": row.get("final_residual"), "error_gpu": row.get("error"),
            "ok": row["status"] == ref["status"] and (row.get("final_residual") or 0) <= 1e-8 * 1.01
            if row["status"] != "diverged" else True}
    # a batch of 64 systems with different κ on the device
    batch = [linsys.spd(256, k, seed=i) for i, k in enumerate(torch.logspace(1, 3, 64).tolist())]
    A = torch.stack([b.A for b in batch]).cuda()
    b = torch.stack([b.b for b in batch]).cuda()
    res = linsys.cg(A, b, tol=1e-10)
    ref = torch.linalg.solve(A, b)
    report["checks"]["batched cg"] = {"converged": res.converged, "iterations": res.iterations,
                                      "max_diff_vs_solve": float((res.x - ref).abs().max()),
                                      "ok": res.converged and float((res.x - ref).abs().max()) < 1e-5}
    for fn in (linsys.jacobi, linsys.gauss_seidel, linsys.heavy_ball, lambda A, b, **k: linsys.pcg(A, b, preconditioner="ssor", **k)):
        dd = [linsys.diagonally_dominant(128, seed=i) for i in range(16)]
        Ad = torch.stack([d.A for d in dd]).cuda()
        bd = torch.stack([d.b for d in dd]).cuda()
        r = fn(Ad, bd, tol=1e-10)
        report["checks"][f"batched {r.method}"] = {"converged": r.converged, "iterations": r.iterations,
                                                   "ok": r.converged and bool(torch.allclose(r.x, torch.linalg.solve(Ad, bd), atol=1e-6))}
    report["timing batch 64×256 (s)"] = {"cg_tol_1e-10": _median_time(lambda: linsys.cg(A, b, tol=1e-10)),
                                         "torch.linalg.solve": _median_time(lambda: torch.linalg.solve(A, b)),
                                         "cholesky": _median_time(lambda: linsys.cholesky(A, b))}
    sweep = study.kappa_sweep((10, 30, 100, 300, 1000, 3000, 10000), n=2000, methods=("gd", "momentum", "cg"),
                              device="cuda", max_iter=300_000)
    report["kappa_sweep_cuda_n2000"] = {"iterations": sweep["iterations"], "slopes": sweep["slopes"]}
    inst = problems.get("digits-mlp").build(seed=0, device="cuda", dtype=torch.float64)
    data = (inst.data.X_train[:64], inst.data.y_train[:64])
    gc = autodiff.gradcheck(inst.model, inst.loss_fn, data)
    g = autodiff.graph(inst.model, inst.loss_fn, data)
    report["checks"]["gradcheck digits-mlp cuda"] = {"ok": gc.passed, "nodes": len(g.nodes),
                                                     "max_abs": max(t.max_abs_error for t in gc.tensors)}
    rows = activations.table(device="cuda", repeats=20, time_size=10_000_000)
    report["activations_cuda"] = [vars(r) for r in rows]
    report["checks"]["activations cuda sigmoid max f'"] = {"ok": abs(rows[0].max_derivative - 0.25) < 1e-12}
    report["all_ok"] = all(c["ok"] for c in report["checks"].values())
    (out / "cuda_check.json").write_text(json.dumps(report, indent=1, default=str))
    print(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
