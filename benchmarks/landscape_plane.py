"""A 51×51 loss plane: batched evaluation vs one point at a time (issue 9, section 5).

Model: the curvature benchmark's MLP 784-256-10 (ReLU, cross-entropy) with a batch of
512 Gaussian inputs and random labels (seeded), filter-normalized random directions
through its initial weights. Contenders, each evaluating the same 51×51 grid:

- ``pointwise`` — the reference: for each point copy θ_c + a d₁ + b d₂ into the model and
  run one forward pass (what loss-landscapes and Li et al.'s scripts do);
- ``vmap`` — ``ravine.landscape.plane(..., affine_first=False)``: ``torch.func.vmap`` over
  ``functional_call`` on chunks of parameter sets (auto-sized to the memory budget);
- ``ravine`` — ``plane(...)`` as shipped: vmap plus the first layer computed once for the
  whole grid (it is affine in (a, b)).

The pointwise reference runs on a subsample of the grid (``--pointwise-points``, evenly
spread) and its time is scaled to the 2601 points (its cost per point is constant); the
batched contenders run the full grid. Contenders alternate in each repeat; medians are
reported. ``max_abs_diff`` checks the batched losses against the pointwise ones on the
subsample.

    python benchmarks/landscape_plane.py                      # CPU, torch's default threads
    python benchmarks/landscape_plane.py --device cuda --repeats 5
    python benchmarks/landscape_plane.py --quick              # smoke run: 11×11

Output (``--out``, default ``benchmarks/results/landscape_plane.json``): ``config``,
``seconds`` (median per contender, full grid), ``speedup`` (pointwise / contender),
``max_abs_diff``, ``target`` (≥ 5×) and ``met``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from ravine.landscape import LossGrid, parameters_of, plane, random_directions


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--resolution", type=int, default=51)
    ap.add_argument("--rows", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--pointwise-points", type=int, default=260)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/landscape_plane.json"))
    args = ap.parse_args()
    if args.quick:
        args.resolution, args.repeats, args.pointwise_points = 11, 1, 40
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    g = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (2.0 / p.shape[-1]) ** 0.5 if p.dim() > 1 else 0.0 * p)
    model = model.to(device)
    X = torch.randn(args.rows, 784, generator=g).to(device)
    y = torch.randint(0, 10, (args.rows,), generator=g).to(device)
    loss_fn = nn.functional.cross_entropy
    n = args.resolution
    center = parameters_of(model)
    d1, d2 = random_directions(model, center, seed=0)
    span = torch.linspace(-1.0, 1.0, n, dtype=torch.float64)
    bb, aa = torch.meshgrid(span, span, indexing="ij")
    a_all, b_all = aa.reshape(-1), bb.reshape(-1)
    pick = torch.linspace(0, n * n - 1, min(args.pointwise_points, n * n)).round().long()
    grid = LossGrid(model, loss_fn, (X, y))

    def run_pointwise() -> tuple[float, torch.Tensor]:
        _sync(device)
        t = time.perf_counter()
        values = grid.loss_pointwise(center, d1, d2, a_all[pick], b_all[pick])
        _sync(device)
        return (time.perf_counter() - t) * (n * n) / len(pick), values

    def run_plane(affine_first: bool) -> tuple[float, torch.Tensor]:
        _sync(device)
        t = time.perf_counter()
        res = plane(model, center, (d1, d2), loss_fn=loss_fn, data=(X, y), resolution=n, span=1.0,
                    affine_first=affine_first)
        _sync(device)
        return time.perf_counter() - t, torch.tensor(res.loss).reshape(-1)

    contenders = {"pointwise": run_pointwise, "vmap": lambda: run_plane(False), "ravine": lambda: run_plane(True)}
    for fn in contenders.values():  # warm-up: first calls pay for vmap's tracing and allocator growth
        fn()
    times: dict[str, list[float]] = {k: [] for k in contenders}
    values: dict[str, torch.Tensor] = {}
    for _ in range(args.repeats):
        for name, fn in contenders.items():
            seconds, vals = fn()
            times[name].append(seconds)
            values[name] = vals.double().cpu()
    med = {k: statistics.median(v) for k, v in times.items()}
    ref = values["pointwise"]
    diff = {k: float((values[k][pick] - ref).abs().max()) for k in ("vmap", "ravine")}
    speedup = {k: med["pointwise"] / med[k] for k in ("vmap", "ravine")}
    result = {"config": {"grid": f"{n}x{n}", "model": "MLP 784-256-10 (ReLU)", "rows": args.rows,
                         "device": str(device), "threads": torch.get_num_threads(), "repeats": args.repeats,
                         "pointwise_points": len(pick), "auto_chunk": grid.batch_size,
                         "torch": torch.__version__, "machine": platform.processor() or platform.machine()},
              "seconds": med, "all_seconds": times, "speedup": speedup, "max_abs_diff": diff,
              "target": ">= 5x (ravine vs pointwise)", "met": speedup["ravine"] >= 5.0}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"{n}×{n} plane, {device}, {torch.get_num_threads()} threads, median of {args.repeats}:")
    for k in contenders:
        extra = "" if k == "pointwise" else f"  speedup {speedup[k]:.1f}×  max|Δ| {diff[k]:.1e}"
        print(f"  {k:10s} {med[k]:8.3f} s{extra}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
