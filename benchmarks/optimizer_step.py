"""Step time of ravine's first-order optimizers, side by side with torch and a memory floor.

For every registry optimizer whose ``step`` needs only gradients (``closure == "none"``),
time ``optimizer.step()`` on N float32 parameters split into T tensors (default 10 M in
100), interleaved in one run with the fastest torch implementation of the same rule
(each of torch's ``fused`` / ``foreach`` kernels that exist for it, fastest reported) and
with a floor::

    floor = N · (bytes the rule must read and write per parameter) / copy bandwidth

where the copy bandwidth is measured here with ``dst.copy_(src)`` (2 × size bytes moved;
the fastest of the repeats, since the floor is a lower bound).
Gradients are fixed random values, copied into every contender's own ``.grad`` before each
step (untimed, as if a backward pass had just written them); every contender owns its
parameters, gradients and state. Times are medians over ``--repeats`` steps after ``--warmup``.

Targets (issue 2, section 5): ravine/torch ≤ 1.1 where torch implements the rule;
ravine/floor ≤ 2 where it does not. torch's SGD momentum keeps ``buf = μ buf + g`` and
scales by the current lr, so for the course's ``momentum`` / ``nesterov`` (v ← αv − εg)
torch SGD(momentum[, nesterov]) is shown as the peer with the same memory traffic, but the
target is the floor. Both compute the same trajectory at a constant lr, which the run
checks (``max_param_diff``).

Usage::

    python benchmarks/optimizer_step.py                 # 10 M params, JSON to benchmarks/results/
    python benchmarks/optimizer_step.py --quick         # 1 M params, few repeats: a smoke run
    python benchmarks/optimizer_step.py --only adam sgd --out /tmp/step.json
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import ravine
from ravine.optim import create, info, names
from ravine.utils import resolve_device, write_json

DEFAULT_OUT = Path(__file__).parent / "results" / "optimizer_step.json"


@dataclass(frozen=True)
class Rule:
    """One benchmarked update rule: the ravine hyperparameters, its torch peer and its memory traffic.

    ``tensor_passes`` counts the full-size tensors the rule must read plus those it must
    write (θ read + written, g read, each state buffer read + written).
    """

    label: str
    optimizer: str
    hyper: dict[str, Any]
    tensor_passes: int
    torch_peer: Callable[..., torch.optim.Optimizer] | None = None
    torch_kwargs: dict[str, Any] = field(default_factory=dict)
    target: str = "torch"  # "torch": ravine/torch <= 1.1; "floor": ravine/floor <= 2
    note: str = ""


def rules_for(name: str) -> list[Rule]:
    """The rules to time for one registry optimizer (two for rmsprop: δ inside / outside the root)."""
    lr = 1e-3  # small, so 20-odd steps on fixed gradients stay finite and comparable
    d = info(name).defaults
    if name == "sgd":
        return [Rule("sgd", name, {"lr": lr}, 3, torch.optim.SGD, {"lr": lr})]
    if name in ("momentum", "nesterov"):
        alpha = d.get("momentum", 0.9) or 0.9
        return [Rule(name, name, {"lr": lr, "momentum": alpha}, 5, torch.optim.SGD,
                     {"lr": lr, "momentum": alpha, "nesterov": name == "nesterov"}, target="floor",
                     note="torch SGD(momentum): buf = μ buf + g, p -= lr·buf; same traffic, differs when lr changes")]
    if name == "adagrad":
        eps = d.get("eps", 1e-7)
        return [Rule("adagrad", name, {"lr": lr}, 5, torch.optim.Adagrad, {"lr": lr, "eps": eps})]
    if name == "rmsprop":
        rho, eps = d.get("rho", 0.9), d.get("eps", 1e-6)
        inside = Rule("rmsprop (δ inside √)", name, {"lr": lr, "eps_inside_sqrt": True}, 5, target="floor",
                      note="torch has no RMSProp with δ inside the root")
        outside = Rule("rmsprop (δ outside √)", name, {"lr": lr, "eps_inside_sqrt": False}, 5, torch.optim.RMSprop,
                       {"lr": lr, "alpha": rho, "eps": eps})
        return [inside, outside]
    if name == "adam":
        betas, eps = tuple(d.get("betas", (0.9, 0.999))), d.get("eps", 1e-8)
        return [Rule("adam", name, {"lr": lr}, 7, torch.optim.Adam, {"lr": lr, "betas": betas, "eps": eps})]
    return []


def make_problem(n_params: int, n_tensors: int, device: torch.device, seed: int) -> tuple[list[torch.Tensor], ...]:
    """Initial values and fixed gradients: ``n_tensors`` float32 tensors holding ``n_params`` in all."""
    gen = torch.Generator(device=device).manual_seed(seed)
    sizes = [n_params // n_tensors + (i < n_params % n_tensors) for i in range(n_tensors)]
    values = [torch.randn(s, generator=gen, device=device) for s in sizes]
    grads = [torch.randn(s, generator=gen, device=device) for s in sizes]
    return values, grads


def params_like(values: list[torch.Tensor], grads: list[torch.Tensor]) -> list[torch.nn.Parameter]:
    params = [torch.nn.Parameter(v.clone()) for v in values]
    for p, g in zip(params, grads, strict=True):
        p.grad = g.clone()  # own copy: torch's foreach SGD(nesterov=True) adds into its gradients in place
    return params


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def copy_bandwidth(n_elements: int, device: torch.device, warmup: int, repeats: int) -> dict[str, float]:
    """Bytes per second of ``dst.copy_(src)`` on float32 tensors of ``n_elements`` (2 × size bytes moved).

    The floor is a lower bound, so it uses the fastest copy seen (the machine's
    bandwidth when nothing gets in the way); the median is recorded beside it.
    """
    src = torch.ones(n_elements, device=device)
    dst = torch.empty_like(src)
    for _ in range(max(warmup, 1)):  # first touch of dst's pages
        dst.copy_(src)
    times = [timed(lambda: dst.copy_(src), device) for _ in range(max(repeats, 10))]
    moved = 2 * src.numel() * src.element_size()
    return {"elements": n_elements, "bytes_moved": moved, "min_seconds": min(times),
            "median_seconds": statistics.median(times), "bytes_per_s": moved / min(times),
            "median_bytes_per_s": moved / statistics.median(times)}


def contenders(rule: Rule, values: list[torch.Tensor], grads: list[torch.Tensor]) -> dict[str, torch.optim.Optimizer]:
    """ravine's optimizer and each torch kernel (fused, foreach) that exists for the rule."""
    out = {"ravine": create(rule.optimizer, params_like(values, grads), **rule.hyper)}
    if rule.torch_peer is None:
        return out
    for impl in ("fused", "foreach"):
        try:
            out[f"torch-{impl}"] = rule.torch_peer(params_like(values, grads), **rule.torch_kwargs, **{impl: True})
        except (TypeError, RuntimeError, ValueError):  # this torch has no such kernel for the rule
            continue
    return out


def bench_rule(rule: Rule, values: list[torch.Tensor], grads: list[torch.Tensor], bandwidth: float,
               warmup: int, repeats: int, device: torch.device) -> dict[str, Any]:
    """Median step time of every contender, steps interleaved so they share the machine's noise."""
    opts = contenders(rule, values, grads)
    own_grads = {key: [p.grad for group in opt.param_groups for p in group["params"]] for key, opt in opts.items()}

    def refresh(key: str) -> None:
        # Untimed: every step sees the same gradient values, freshly written as after a backward pass.
        torch._foreach_copy_(own_grads[key], grads)

    for _ in range(warmup):  # first steps allocate state
        for key, opt in opts.items():
            refresh(key)
            opt.step()
    samples: dict[str, list[float]] = {key: [] for key in opts}
    for _ in range(repeats):
        for key, opt in opts.items():
            refresh(key)
            samples[key].append(timed(opt.step, device))
    medians = {key: statistics.median(s) for key, s in samples.items()}
    torch_keys = [k for k in medians if k != "ravine"]
    best = min(torch_keys, key=medians.__getitem__) if torch_keys else None
    n = sum(v.numel() for v in values)
    floor = n * rule.tensor_passes * values[0].element_size() / bandwidth
    row: dict[str, Any] = {
        "rule": rule.label, "optimizer": rule.optimizer, "hyper": rule.hyper, "target": rule.target,
        "ravine_ms": 1e3 * medians["ravine"], "floor_ms": 1e3 * floor,
        "bytes_per_param": rule.tensor_passes * values[0].element_size(),
        "torch_impl": best, "torch_ms": 1e3 * medians[best] if best else None,
        "torch_all_ms": {k: 1e3 * medians[k] for k in torch_keys},
        "min_ms": {k: 1e3 * min(s) for k, s in samples.items()},
        "ravine_over_floor": medians["ravine"] / floor,
        "ravine_over_torch": medians["ravine"] / medians[best] if best else None,
        "note": rule.note,
    }
    # Same trajectory at a constant lr (all took the same steps on the same gradients): a guard that
    # we compare like with like.
    ours = opts["ravine"].param_groups[0]["params"]
    with torch.no_grad():
        row["max_param_diff"] = {
            key: max(float((a - b).abs().max()) for a, b in zip(ours, opts[key].param_groups[0]["params"], strict=True))
            for key in torch_keys}
    ratio, limit = ((row["ravine_over_torch"], 1.1) if rule.target == "torch" else (row["ravine_over_floor"], 2.0))
    row["target_ratio"], row["met"] = limit, bool(ratio is not None and ratio <= limit)
    return row


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", type=int, default=10_000_000, help="parameters in all (default 10 M)")
    parser.add_argument("--tensors", type=int, default=100, help="number of parameter tensors (default 100)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--copy-elements", type=int, default=None,
                        help="float32 elements in the bandwidth copy (default: --params)")
    parser.add_argument("--only", nargs="*", default=None, help="registry names to run (default: all first-order)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 M params, warmup 1, repeats 3")
    args = parser.parse_args(argv)
    if args.quick:
        args.params, args.warmup, args.repeats = 1_000_000, 1, 3
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark and return the JSON-ready result."""
    device = resolve_device(args.device)
    values, grads = make_problem(args.params, args.tensors, device, args.seed)
    bandwidth = copy_bandwidth(args.copy_elements or args.params, device, args.warmup, args.repeats)
    rows, skipped = [], []
    for name in args.only or names():
        entry = info(name)
        if entry.closure != "none":
            why = ("its cost is the closure's loss evaluations, not the update" if entry.name == "line-search-gd"
                   else "not a first-order elementwise update")
            skipped.append({"optimizer": name, "reason": f"step needs a closure ({entry.closure}); {why}"})
            continue
        rules = rules_for(entry.name)
        if not rules:
            skipped.append({"optimizer": name, "reason": "no torch peer / byte count known: add it to rules_for"})
        for rule in rules:
            try:
                rows.append(bench_rule(rule, values, grads, bandwidth["bytes_per_s"], args.warmup, args.repeats,
                                       device))
            except ravine.RavineError as exc:  # e.g. a registry entry without eps_inside_sqrt
                skipped.append({"optimizer": name, "reason": f"{rule.label}: {exc}"})
    return {
        "config": {"params": args.params, "tensors": args.tensors, "dtype": "float32", "device": str(device),
                   "warmup": args.warmup, "repeats": args.repeats, "seed": args.seed,
                   "threads": torch.get_num_threads(), "torch": torch.__version__, "ravine": ravine.__version__,
                   "machine": platform.processor() or platform.machine()},
        "copy_bandwidth": bandwidth, "rows": rows, "skipped": skipped,
    }


def print_table(result: dict[str, Any]) -> None:
    bw = result["copy_bandwidth"]["bytes_per_s"] / 1e9
    cfg = result["config"]
    print(f"{cfg['params']:,} float32 params in {cfg['tensors']} tensors on {cfg['device']}, "
          f"{cfg['threads']} threads; copy bandwidth {bw:.1f} GB/s; median of {cfg['repeats']}")
    head = f"{'rule':24} {'ravine ms':>10} {'torch ms':>9} {'torch kernel':>13} {'floor ms':>9} " \
           f"{'r/torch':>8} {'r/floor':>8}  target"
    print(head)
    print("-" * len(head))
    for r in result["rows"]:
        torch_ms = f"{r['torch_ms']:.2f}" if r["torch_ms"] is not None else "—"
        vs_torch = f"{r['ravine_over_torch']:.2f}" if r["ravine_over_torch"] is not None else "—"
        goal = f"{'torch' if r['target'] == 'torch' else 'floor'} ≤ {r['target_ratio']:g}: " \
               f"{'met' if r['met'] else 'MISSED'}"
        print(f"{r['rule']:24} {r['ravine_ms']:10.2f} {torch_ms:>9} {r['torch_impl'] or '—':>13} "
              f"{r['floor_ms']:9.2f} {vs_torch:>8} {r['ravine_over_floor']:8.2f}  {goal}")
    for s in result["skipped"]:
        print(f"skipped {s['optimizer']}: {s['reason']}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    result = run(args)
    print_table(result)
    write_json(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
