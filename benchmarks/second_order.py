"""Benchmark 4(a) and 4(c): Levenberg–Marquardt on small tanh MLPs, against Adam / L-BFGS and against a peer LM.

Target everywhere: ``sinc(10x)`` in NumPy's convention, ``sin(10πx) / (10πx)`` (``torch.sinc``; the
target of torch-levenberg-marquardt's own curve-fitting example), sampled on ``m`` evenly spaced
points of [-1, 1]. Models are ``Linear``/``tanh`` stacks initialized from a seeded
``torch.Generator`` (PyTorch's default uniform ±1/√fan_in), so every contender of one seed starts
from the same weights (``state_dict`` copies). MSE = mean((f(x) − y)²), full batch.

(a) 1-20-1 (61 parameters), 200 points: ravine's ``levenberg-marquardt`` vs ``adam`` (lr 1e-3, the
    usual default, and 1e-2) vs ``lbfgs`` (strong Wolfe, history 10, one iteration per ``step``),
    each for the same wall-time budget (``--budget`` seconds of step time). Recorded: final MSE at the
    budget, the MSE-vs-time curve (MSE after a step, sampled on a log-spaced grid of step time; the
    evaluation is not timed) and the time each run first reached MSE 1e-3, 1e-5 and 1e-7.
    Median over ``--seeds`` seeds; runs are interleaved (seed-major) so they share the noise.

(c) ravine's ``levenberg-marquardt`` vs ``torch_levenberg_marquardt.training.LevenbergMarquardtModule``
    (PyPI ``torch-levenberg-marquardt``, its README configuration: MSELoss, learning_rate 1,
    attempts_per_step 10, its default damping ``StandardDampingStrategy`` = JᵀJ + λI with λ0 = 1e-3,
    ×0.1 / ×10; ``solve_method`` "qr" (its default) and "cholesky" (its fastest) as two rows).
    One *iteration* is one Jacobian + up to 10 damped trials on both sides: ``opt.step(closure)``
    for ravine, ``module.training_step(x, y)`` for the peer. Problems: the (a) fit (target MSE 1e-6),
    1-30-30-1 (1 021 parameters) on 300 points (1e-5) and 1-100-100-1 (10 401 parameters) on
    1 000 points (1e-3; J is 1 000 × 10 401, so both solve in the m × m space). Each run stops
    at the first iteration with MSE ≤ the problem's target (or at ``max_iter`` / ``max_time``);
    only the steps are timed (the MSE check after each step is not).
    Reported: iterations, wall time and seconds per iteration to the target, medians over
    ``--repeats``. ravine runs with its per-sample Jacobian (``SampleResiduals``, vmap over
    samples — the peer's approach) when the installed ravine has it, else with a plain closure.

Threads: torch runs single-threaded (``--threads``, default 1) for every contender, and
OMP/MKL/OpenBLAS are pinned to the same count before torch is imported.

Usage::

    python benchmarks/second_order.py                 # (a) and (c), JSON to benchmarks/results/second_order.json
    python benchmarks/second_order.py --quick         # smoke run: 1 s budget, 1 seed, the two small (c) fits
    python benchmarks/second_order.py --only a --budget 10 --seeds 5 --out /tmp/so.json
"""

from __future__ import annotations

import argparse
import os
import sys

_threads = "1"
for _i, _arg in enumerate(sys.argv):  # pin BLAS threads before torch loads (same count as --threads)
    if _arg == "--threads" and _i + 1 < len(sys.argv):
        _threads = sys.argv[_i + 1]
    elif _arg.startswith("--threads="):
        _threads = _arg.split("=", 1)[1]
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, _threads)

import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402

import ravine  # noqa: E402
from ravine.optim import create  # noqa: E402

try:  # the per-sample Jacobian closure (ravine ≥ the commit that added it)
    from ravine.optim.levenberg_marquardt import SampleResiduals
except ImportError:  # pragma: no cover - older ravine: plain closure, Jacobian through the full batch
    SampleResiduals = None

DEFAULT_OUT = Path(__file__).parent / "results" / "second_order.json"
Stepper = Callable[[], None]


# ---------------------------------------------------------------- problem


def make_mlp(widths: list[int], dtype: torch.dtype, seed: int, device: str = "cpu") -> torch.nn.Sequential:
    """Linear/tanh stack with PyTorch's default init U(±1/√fan_in), drawn from a seeded generator."""
    gen = torch.Generator().manual_seed(seed)
    layers: list[torch.nn.Module] = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
        lin = torch.nn.Linear(fan_in, fan_out, dtype=dtype)
        bound = 1.0 / math.sqrt(fan_in)
        with torch.no_grad():
            lin.weight.uniform_(-bound, bound, generator=gen)
            lin.bias.uniform_(-bound, bound, generator=gen)
        layers += [lin, torch.nn.Tanh()]
    return torch.nn.Sequential(*layers[:-1]).to(device)


def clone_mlp(net: torch.nn.Sequential) -> torch.nn.Sequential:
    """An independent copy with the same weights (``state_dict`` copy into a fresh module)."""
    widths = [net[0].in_features] + [m.out_features for m in net if isinstance(m, torch.nn.Linear)]
    twin = make_mlp(widths, net[0].weight.dtype, 0, str(net[0].weight.device))
    twin.load_state_dict(net.state_dict())
    return twin


def sinc_data(m: int, dtype: torch.dtype, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """x: m evenly spaced points of [-1, 1] as (m, 1); y = sin(10πx)/(10πx) (``np.sinc(10 x)``)."""
    x = torch.linspace(-1.0, 1.0, m, dtype=dtype, device=device).unsqueeze(1)
    return x, torch.sinc(10.0 * x)


@torch.no_grad()
def mse(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float(((net(x) - y) ** 2).mean())


def ravine_lm(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, per_sample: bool = True) -> Stepper:
    """One ravine LM iteration per call: ``opt.step(closure)``, closure → residual vector f(x) − y."""
    opt = create("levenberg-marquardt", net.parameters())
    if per_sample and SampleResiduals is not None:
        closure: Callable[[], torch.Tensor] = SampleResiduals(net, x, y)
    else:
        def closure() -> torch.Tensor:
            return (net(x) - y).reshape(-1)
    return lambda: opt.step(closure)


def ravine_loss_opt(name: str, net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, **hyper: Any) -> Stepper:
    """One step of a loss-closure (``lbfgs``) or plain (``adam``) ravine optimizer on the MSE."""
    opt = create(name, net.parameters(), **hyper)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = ((net(x) - y) ** 2).mean()
        if torch.is_grad_enabled():
            loss.backward()
        return loss

    return lambda: opt.step(closure)


def peer_lm(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, solve_method: str) -> Stepper:
    """One ``LevenbergMarquardtModule.training_step`` per call (torch-levenberg-marquardt, README settings)."""
    import torch_levenberg_marquardt as tlm

    module = tlm.training.LevenbergMarquardtModule(model=net, loss_fn=tlm.loss.MSELoss(), learning_rate=1.0,
                                                   attempts_per_step=10, solve_method=solve_method)
    return lambda: module.training_step(x, y)


# ---------------------------------------------------------------- (a) equal wall time


def run_for_time(step: Stepper, net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, budget: float,
                 samples: int = 40) -> dict[str, Any]:
    """Step until ``budget`` seconds have passed; MSE sampled on a log-spaced time grid (untimed)."""
    grid = [budget * 10 ** (-3 * (1 - k / (samples - 1))) for k in range(samples)]  # budget·1e-3 … budget
    curve_t, curve_mse = [0.0], [mse(net, x, y)]
    elapsed, steps, nxt = 0.0, 0, 0
    status = "ok"
    while elapsed < budget:
        start = time.perf_counter()
        try:
            step()
        except ravine.errors.RavineError as exc:  # e.g. LM at an exact fit; keep what was reached
            status = f"stopped: {exc}"
            break
        elapsed += time.perf_counter() - start
        steps += 1
        if nxt < samples and elapsed >= grid[nxt]:
            curve_t.append(elapsed)
            curve_mse.append(mse(net, x, y))
            while nxt < samples and elapsed >= grid[nxt]:
                nxt += 1
    return {"final_mse": mse(net, x, y), "steps": steps, "time": elapsed, "curve_t": curve_t,
            "curve_mse": curve_mse, "status": status}


LEVELS = (1e-3, 1e-5, 1e-7)  # (a): time to reach these MSEs, read off the sampled curves


def time_to(run: dict[str, Any], level: float) -> float | None:
    """First sampled time at which the run's MSE was ≤ level (None: not within the budget)."""
    return next((t for t, v in zip(run["curve_t"], run["curve_mse"], strict=True) if v <= level), None)


def _median_or_none(values: list[float | None]) -> float | None:
    # A run that never got there counts as +inf, so the median is None when most runs missed.
    med = statistics.median(math.inf if v is None else v for v in values)
    return None if math.isinf(med) else med


def bench_a(budget: float, seeds: int, dtype: torch.dtype, adam_lrs: list[float]) -> dict[str, Any]:
    x, y = sinc_data(200, dtype)
    contenders: dict[str, Callable[[torch.nn.Module], Stepper]] = {
        "levenberg-marquardt": lambda net: ravine_lm(net, x, y),
        "lbfgs": lambda net: ravine_loss_opt("lbfgs", net, x, y),
    }
    for lr in adam_lrs:
        contenders[f"adam(lr={lr:g})"] = lambda net, lr=lr: ravine_loss_opt("adam", net, x, y, lr=lr)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in contenders}
    for seed in range(seeds):
        init = make_mlp([1, 20, 1], dtype, seed)
        for name, build in contenders.items():
            net = clone_mlp(init)
            runs[name].append({"seed": seed, **run_for_time(build(net), net, x, y, budget)})
            print(f"  (a) seed {seed} {name:22} MSE {runs[name][-1]['final_mse']:.3e} "
                  f"in {runs[name][-1]['steps']} steps", flush=True)
    rows = []
    for name, rs in runs.items():
        rows.append({"method": name, "median_final_mse": statistics.median(r["final_mse"] for r in rs),
                     "final_mse": [r["final_mse"] for r in rs],
                     "median_steps": statistics.median(r["steps"] for r in rs),
                     "median_time_to": {f"{level:g}": _median_or_none([time_to(r, level) for r in rs])
                                        for level in LEVELS},
                     "runs": rs})
    lm = rows[0]["median_final_mse"]
    for row in rows:
        row["mse_over_lm"] = row["median_final_mse"] / lm if lm > 0 else math.inf
    return {"problem": "mlp 1-20-1 (61 params), sinc(10x), 200 points", "budget_s": budget, "seeds": seeds,
            "rows": rows}


# ---------------------------------------------------------------- (c) iterations and time to a target MSE


def run_to_target(step: Stepper, net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, target: float,
                  max_iter: int, max_time: float) -> dict[str, Any]:
    """Iterate until MSE ≤ target; only ``step`` is timed. Per-iteration times kept for the median."""
    times: list[float] = []
    value, status = mse(net, x, y), "max_iter"
    while len(times) < max_iter:
        if value <= target:
            status = "reached"
            break
        if sum(times) > max_time:
            status = "max_time"
            break
        start = time.perf_counter()
        try:
            step()
        except (ravine.errors.RavineError, RuntimeError) as exc:
            status = f"error: {exc}"
            break
        times.append(time.perf_counter() - start)
        value = mse(net, x, y)
    if value <= target:
        status = "reached"
    return {"reached": status == "reached", "status": status, "iterations": len(times), "time": sum(times),
            "s_per_iter": statistics.median(times) if times else math.nan, "final_mse": value}


def peer_available() -> str | None:
    try:
        from importlib.metadata import version
        import torch_levenberg_marquardt  # noqa: F401
        return version("torch-levenberg-marquardt")
    except ImportError:
        return None


def bench_c(problems: list[dict[str, Any]], repeats: int, dtype: torch.dtype) -> dict[str, Any]:
    contenders: dict[str, Callable[..., Stepper]] = {
        "ravine": lambda net, x, y: ravine_lm(net, x, y),
        "tlm-qr": lambda net, x, y: peer_lm(net, x, y, "qr"),
        "tlm-cholesky": lambda net, x, y: peer_lm(net, x, y, "cholesky"),
    }
    out = []
    for prob in problems:
        x, y = sinc_data(prob["m"], dtype)
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in contenders}
        for rep in range(repeats):
            init = make_mlp(prob["widths"], dtype, prob["seed"])
            order = list(contenders) if rep % 2 == 0 else list(reversed(contenders))  # alternate who goes first
            for name in order:
                net = clone_mlp(init)
                res = run_to_target(contenders[name](net, x, y), net, x, y, prob["target"], prob["max_iter"],
                                    prob["max_time"])
                runs[name].append(res)
                print(f"  (c) {prob['name']} rep {rep} {name:13} {res['status']:8} it {res['iterations']:4} "
                      f"t {res['time']:.3f}s s/it {res['s_per_iter']:.4f} MSE {res['final_mse']:.2e}", flush=True)
        summary = {}
        for name, rs in runs.items():
            summary[name] = {key: statistics.median(r[key] for r in rs)
                             for key in ("iterations", "time", "s_per_iter", "final_mse")}
            summary[name]["reached"] = sum(r["reached"] for r in rs)
            summary[name]["runs"] = rs
        rav = summary["ravine"]
        for name in contenders:
            if name != "ravine":
                peer = summary[name]
                summary[name]["ratio_vs_ravine"] = {k: peer[k] / rav[k] if rav[k] else math.inf
                                                    for k in ("iterations", "time", "s_per_iter")}
        n_params = sum(p.numel() for p in make_mlp(prob["widths"], dtype, 0).parameters())
        out.append({**prob, "n_params": n_params, "results": summary})
    return {"repeats": repeats, "problems": out}


# ---------------------------------------------------------------- report


def print_a(a: dict[str, Any]) -> None:
    print(f"\n(a) {a['problem']}: median over {a['seeds']} seeds at {a['budget_s']:g} s wall time each")
    levels = list(a["rows"][0]["median_time_to"])
    print(f"{'method':22} {'final MSE':>11} {'÷ LM':>9} {'steps':>8}  "
          + " ".join(f"{'t→' + lv + ' s':>10}" for lv in levels))
    for row in a["rows"]:
        reach = " ".join(f"{'—' if t is None else f'{t:.3f}':>10}" for t in row["median_time_to"].values())
        print(f"{row['method']:22} {row['median_final_mse']:>11.3e} {row['mse_over_lm']:>9.2g} "
              f"{row['median_steps']:>8.0f}  {reach}")
    print("t→L: median time at which the sampled MSE first reached L (—: most seeds did not within the budget)")


def print_c(c: dict[str, Any]) -> None:
    print(f"\n(c) ravine LM vs torch-levenberg-marquardt: medians over {c['repeats']} repeats "
          "(ratio = peer ÷ ravine; > 1 means ravine is ahead)")
    head = (f"{'problem':26} {'solver':13} {'reached':>7} {'iters':>6} {'time s':>8} {'s/iter':>8} "
            f"{'iters x':>7} {'time x':>7} {'s/it x':>7}")
    print(head)
    print("-" * len(head))
    for prob in c["problems"]:
        label = f"{prob['name']} (n={prob['n_params']})"
        ours = prob["results"]["ravine"]["reached"] == c["repeats"]
        for name, s in prob["results"].items():
            ratio = s.get("ratio_vs_ravine")
            # A peer that missed the target stopped early: its iterations and time are lower bounds.
            mark = "?" if not ours else (">" if s["reached"] < c["repeats"] else " ")
            tail = (f"{mark}{ratio['iterations']:>6.2f} {mark}{ratio['time']:>6.2f} {ratio['s_per_iter']:>7.2f}"
                    if ratio else f"{'':>7} {'':>7} {'':>7}")
            print(f"{label:26} {name:13} {s['reached']:>3}/{c['repeats']:<3} {s['iterations']:>6.0f} "
                  f"{s['time']:>8.3f} {s['s_per_iter']:>8.4f} {tail}")
        print(f"{'':26} target MSE {prob['target']:g}, m = {prob['m']}, "
              f"final MSE ravine {prob['results']['ravine']['final_mse']:.2e}")
    print("> : the peer missed the target (stopped at max_iter / max_time), so the ratio is a lower bound; "
          "? : ravine missed it")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["a", "c"], help="run one part only")
    parser.add_argument("--budget", type=float, default=5.0, help="(a) wall-time budget per run, seconds")
    parser.add_argument("--seeds", type=int, default=5, help="(a) seeds (medians over them)")
    parser.add_argument("--adam-lr", type=float, nargs="+", default=[1e-3, 1e-2], help="(a) Adam learning rates")
    parser.add_argument("--repeats", type=int, default=3, help="(c) repeats per contender (medians)")
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, the same for every contender")
    parser.add_argument("--seed", type=int, default=0, help="(c) weight-init seed")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 s budget, 1 seed/repeat, small (c)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    if args.quick:
        args.budget, args.seeds, args.repeats = 1.0, 1, 1
    # Targets: what ravine's LM reaches in a few seconds (small) or ~20 s (10k); the 10k fit is slow for
    # every LM here (MSE 5e-4 after 60-100 iterations of 0.5 s), so its target is 1e-3.
    problems = [
        {"name": "sinc 1-20-1", "widths": [1, 20, 1], "m": 200, "target": 1e-6, "max_iter": 3000,
         "max_time": 30.0, "seed": args.seed},
        {"name": "sinc 1-30-30-1", "widths": [1, 30, 30, 1], "m": 300, "target": 1e-5, "max_iter": 2000,
         "max_time": 30.0, "seed": args.seed},
        {"name": "sinc 1-100-100-1", "widths": [1, 100, 100, 1], "m": 1000, "target": 1e-3, "max_iter": 300,
         "max_time": 60.0, "seed": args.seed},
    ]
    if args.quick:
        problems = [{**prob, "max_time": 5.0} for prob in problems[:2]]
    result: dict[str, Any] = {
        "config": {"dtype": args.dtype, "threads": torch.get_num_threads(), "quick": args.quick,
                   "torch": torch.__version__, "ravine": getattr(ravine, "__version__", "?"),
                   "peer": peer_available(), "per_sample_jacobian": SampleResiduals is not None,
                   "machine": platform.platform(), "target": "torch.sinc(10 x) on linspace(-1, 1, m)"},
    }
    if args.only in (None, "a"):
        result["a"] = bench_a(args.budget, args.seeds, dtype, args.adam_lr)
    if args.only in (None, "c"):
        if result["config"]["peer"] is None:
            print("torch-levenberg-marquardt is not installed (pip install 'torch-levenberg-marquardt>=1.2,<2'); "
                  "skipping (c)")
        else:
            result["c"] = bench_c(problems, args.repeats, dtype)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    from ravine.utils import write_json
    write_json(args.out, result)
    if "a" in result:
        print_a(result["a"])
    if "c" in result:
        print_c(result["c"])
    print(f"\nwrote {args.out}")
    return result


if __name__ == "__main__":
    main()
