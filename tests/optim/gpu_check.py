"""One short CUDA check of the optimizers (run by hand on a GPU machine; CI has none):
``python tests/optim/gpu_check.py``. Prints one line per check and exits 1 if any failed."""

from __future__ import annotations

import sys
import traceback

import torch

import ravine.optim as ro

def _flag(name, flag):
    from ravine.errors import HyperparameterError

    try:
        return float(steps(name, **{flag: True}).abs().sum())
    except HyperparameterError as exc:
        assert flag in str(exc), exc
        return f"refused: {exc}"[:120]


FIRST = ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"]
failed = []


def check(label, fn):
    try:
        print(label, "ok", fn() or "", flush=True)
    except Exception:  # noqa: BLE001 - report every check
        failed.append(label)
        print(label, "FAIL", traceback.format_exc(limit=3).replace("\n", " | ")[-600:], flush=True)


def steps(name, compiled=False, **flags):
    w = torch.nn.Parameter(torch.linspace(-1, 1, 1000, device="cuda"))
    opt = ro.create(name, [w], lr=0.01, **flags)
    step = torch.compile(opt.step) if compiled else opt.step
    for _ in range(3):
        w.grad = 2 * w.detach() + 1
        step()
    return w.detach()


for name in FIRST:
    check(f"compile {name}", lambda n=name: float((steps(n, True) - steps(n)).abs().max()) < 1e-6 or 1 / 0)
    check(f"maximize {name}", lambda n=name: torch.isfinite(steps(n, maximize=True)).all().item() or 1 / 0)
    for flag in ("fused", "foreach", "capturable"):
        check(f"{flag} {name}", lambda n=name, f=flag: _flag(n, f))


for name in ["newton", "newton-cg", "bfgs", "lbfgs", "levenberg-marquardt", "gauss-newton"]:
    def second(n=name):
        gen = torch.Generator(device="cuda").manual_seed(0)
        X = torch.randn(64, 4, device="cuda", generator=gen)
        y = torch.tanh(X @ torch.tensor([0.5, -1.0, 0.3, 0.2], device="cuda"))
        w = torch.zeros(4, device="cuda", requires_grad=True)
        opt = ro.create(n, [w])
        kind = ro.info(n).closure
        def residual(): return torch.tanh(X @ w) - y
        def loss():
            opt.zero_grad(); v = 0.5 * residual().pow(2).mean(); v.backward(); return v
        closure = {"residual": residual, "graph": lambda: 0.5 * residual().pow(2).mean(), "loss": loss}[kind]
        for _ in range(10):
            opt.step(closure)
        return float(0.5 * residual().pow(2).mean())
    check(f"second-order cuda {name}", second)

print("torch", torch.__version__, "failed:", failed)
sys.exit(1 if failed else 0)
