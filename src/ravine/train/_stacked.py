"""One optimizer update for several batched runs at once, without N trips through ``Optimizer.step``.

Each run of :func:`ravine.train.batched.fit_batched` keeps its own optimizer;
stepping N of them costs N trips through ``torch.optim.Optimizer.step`` (hooks,
profiler scope, param-group bookkeeping, device grouping), which at 16 small
runs was half of a batched step. Runs whose optimizers are the same plain rule
with the same hyperparameters except ε (a learning-rate sweep: ``ravine tune``)
and stand next to each other in the batch are updated here together:

- on the CPU, by the fused kernel their own optimizer would run
  (``torch._fused_adam_`` / ``torch._fused_sgd_``), called once per run with the
  same arguments on views of the stacked tensors: the same numbers bit for bit,
  one pass over memory per run;
- elsewhere (GPU: one launch per op whatever N), by ``torch._foreach_*`` ops over
  slices of the stacked tensors ``(N, ...)`` with ε as a per-run factor: the
  fused kernel's arithmetic, equal to the run alone to rounding.

Only the rules written here (Adam, SGD, as ravine delegates them to torch:
fused kernel, one param group, no L1, not maximizing, no step hooks) are
stacked; every other run steps through its own optimizer.

The per-run optimizer stays the source of truth: its ``state`` holds views into
the stacked state tensors (its own copies after training, see :meth:`release`),
and its ``param_groups[0]`` is read at every step (schedules work), so a run can
leave the stack (a neighbour stopped, a schedule changed a key) and step alone
with the same state.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from ravine.optim import first_order


def _plain_group(opt: torch.optim.Optimizer) -> dict[str, Any] | None:
    """The only param group of a hook-free optimizer that runs torch's fused kernel as-is, else None."""
    if len(opt.param_groups) != 1 or opt._optimizer_step_pre_hooks or opt._optimizer_step_post_hooks:
        return None
    if getattr(opt, "grad_scale", None) is not None or getattr(opt, "found_inf", None) is not None:
        return None
    group = opt.param_groups[0]
    if group.get("l1", 0.0) or group.get("maximize", False) or not group.get("fused", False):
        return None
    if group.get("differentiable", False) or group.get("capturable", False):
        return None
    return group


class StackedUpdates:
    """Adam / SGD / AdaGrad updates of the runs of one ensemble without ``Optimizer.step`` (module docstring).

    Args:
        stacked: the ensemble's stacked parameters ``(N, ...)``.
        optimizers: run k's optimizer, whose parameters are ``[p[k] for p in stacked]``.
    """

    def __init__(self, stacked: Sequence[torch.Tensor], optimizers: Sequence[torch.optim.Optimizer]) -> None:
        self.stacked = list(stacked)
        self.params = [p.detach() for p in stacked]
        self.optimizers = list(optimizers)
        self.fused = bool(self.params) and first_order.fused_cpu_tensors([self.params])
        rules = [self._rule(opt) for opt in optimizers]
        if not self.fused:  # the foreach stack: Adam and SGD, for rules at least two runs follow
            rules = [r if r in ("adam", "sgd") and rules.count(r) > 1 else None for r in rules]
        self.rules = rules
        self.state: dict[str, list[torch.Tensor]] = {}
        if any(r == "adam" for r in self.rules):
            self.state["exp_avg"] = [torch.zeros_like(p) for p in self.params]
            self.state["exp_avg_sq"] = [torch.zeros_like(p) for p in self.params]
        # run k's step counters (one per parameter, as torch keeps them), advanced by one call
        self.steps: list[list[torch.Tensor]] = [[] for _ in optimizers]
        for k, (opt, rule) in enumerate(zip(self.optimizers, self.rules, strict=True)):
            if rule == "adam":  # the state torch would create at the first step, as views of the stack
                for i, p in enumerate(opt.param_groups[0]["params"]):
                    step = torch.zeros((), dtype=torch.float32, device=p.device)
                    opt.state[p] = {"step": step, "exp_avg": self.state["exp_avg"][i][k],
                                    "exp_avg_sq": self.state["exp_avg_sq"][i][k]}
                    self.steps[k].append(step)
            elif rule == "adagrad":  # torch builds AdaGrad's state with the optimizer
                self.steps[k] = [opt.state[p]["step"] for p in opt.param_groups[0]["params"]]
        self.counts = [0] * len(optimizers)
        self._lists: dict[int, list[list[torch.Tensor]]] = {}

    def release(self) -> None:
        """Give each optimizer state tensors of its own (not views of the whole stack: a saved
        ``state_dict`` would otherwise carry every run's storage)."""
        for opt in self.optimizers:
            for state in opt.state.values():
                for name, value in state.items():
                    if name in self.state:
                        state[name] = value.clone()

    @staticmethod
    def _rule(opt: torch.optim.Optimizer) -> str | None:
        group = _plain_group(opt)
        if group is None:
            return None
        if type(opt) is first_order.AdaGrad:
            params = group["params"]
            return "adagrad" if all(float(opt.state[p]["step"]) == 0 for p in params) else None
        if any(opt.state.get(p) for p in group["params"]):
            return None
        if type(opt) is first_order.Adam and not group.get("amsgrad", False) and not group.get(
                "decoupled_weight_decay", False):
            return "adam"
        if type(opt) is first_order.SGD and group.get("momentum", 0) == 0:
            return "sgd"
        return None

    def _key(self, k: int) -> tuple | None:
        rule = self.rules[k]
        group = _plain_group(self.optimizers[k])
        if rule is None or group is None:
            return None
        if rule == "adam":
            return (rule, self.counts[k], tuple(group["betas"]), group["eps"], group["weight_decay"])
        if rule == "adagrad":
            return (rule, group["lr_decay"], group["weight_decay"], group["eps"])
        return (rule, group["weight_decay"], group.get("dampening", 0), group.get("nesterov", False))

    def step(self, runs: Sequence[int]) -> list[int]:
        """Update the runs ``runs`` (increasing indices); returns those left to step alone."""
        alone: list[int] = []
        if self.fused:
            keyed = []
            for k in runs:
                key = self._key(k)
                if key is None:
                    alone.append(k)
                else:
                    keyed.append((key, k))
            # every stepping run's step counters advance in one call (one per run cost as much as Adam's kernel)
            counters = [t for key, k in keyed if key[0] != "sgd" for t in self.steps[k]]
            if counters:
                torch._foreach_add_(counters, 1)
            for key, k in keyed:
                self._fused_step(key, k)
            return alone
        i = 0
        while i < len(runs):
            key = self._key(runs[i])
            j = i + 1
            while key is not None and j < len(runs) and runs[j] == runs[j - 1] + 1 and self._key(runs[j]) == key:
                j += 1
            if j - i >= 2:
                self._foreach_update(key, runs[i], runs[j - 1] + 1)  # type: ignore[arg-type]
            else:
                alone.append(runs[i])
                if self.rules[runs[i]] == "adam":
                    self.counts[runs[i]] += 1  # its own optimizer advances its step counters
            i = j
        return alone

    def _run_lists(self, k: int) -> list[list[torch.Tensor]]:
        """Run k's parameters, gradients and state tensors: built once (the storage is persistent)."""
        lists = self._lists.get(k)
        if lists is None:
            lists = [[p[k] for p in self.params], [p.grad[k] for p in self.stacked]]  # type: ignore[index]
            if self.rules[k] == "adam":
                lists += [[t[k] for t in self.state[name]] for name in ("exp_avg", "exp_avg_sq")]
            elif self.rules[k] == "adagrad":
                opt = self.optimizers[k]
                lists.append([opt.state[p]["sum"] for p in opt.param_groups[0]["params"]])
            self._lists[k] = lists
        return lists

    @torch.no_grad()
    def _fused_step(self, key: tuple, k: int) -> None:
        # The kernel run k's own optimizer runs, with the same arguments (so the same numbers, bit for bit),
        # minus torch.optim's per-step Python; one pass over memory per run, where the stacked foreach ops
        # below make ten (measured 4x slower on the CPU at 16 runs of 26k parameters).
        opt = self.optimizers[k]
        lr = float(opt.param_groups[0]["lr"])
        lists = self._run_lists(k)
        if key[0] == "adam":  # (its step counters were advanced by the caller)
            _, _, (beta1, beta2), eps, weight_decay = key
            self.counts[k] += 1
            torch._fused_adam_(lists[0], lists[1], lists[2], lists[3], [], self.steps[k], amsgrad=False, lr=lr,
                               beta1=beta1, beta2=beta2, weight_decay=weight_decay, eps=eps, maximize=False)
        elif key[0] == "adagrad":
            _, lr_decay, weight_decay, eps = key
            torch._fused_adagrad_(lists[0], lists[1], lists[2], self.steps[k], lr=lr, lr_decay=lr_decay,
                                  weight_decay=weight_decay, eps=eps, maximize=False)
        else:
            torch._fused_sgd_(lists[0], lists[1], [], weight_decay=key[1], momentum=0.0, lr=lr,
                              dampening=key[2], nesterov=key[3], maximize=False, is_first_step=False)
        opt._opt_called = True  # type: ignore[attr-defined]  # torch's LR schedulers check it

    @torch.no_grad()
    def _foreach_update(self, key: tuple, a: int, b: int) -> None:
        # Off the CPU (one kernel launch per op, whatever N): the fused kernel's arithmetic as foreach ops
        # over the stacked slices, ε a per-run factor; equal to the run alone to rounding.
        lrs = [float(self.optimizers[k].param_groups[0]["lr"]) for k in range(a, b)]
        if key[0] == "adam":
            torch._foreach_add_([s for k in range(a, b) for s in self.steps[k]], 1)
            for k in range(a, b):
                self.counts[k] += 1
        params = [p[a:b] for p in self.params]
        grads = [p.grad[a:b] for p in self.stacked]  # type: ignore[index]
        if key[0] == "adam":
            _, count, (beta1, beta2), eps, weight_decay = key
            step = count + 1
            # as torch's fused kernel: step size and √(1−ρ2ᵗ) in double, then the element type
            bias_correction1 = 1 - beta1 ** step
            bias_correction2_sqrt = math.sqrt(1 - beta2 ** step)
            if weight_decay:
                grads = torch._foreach_add(grads, params, alpha=weight_decay)
            exp_avg = [m[a:b] for m in self.state["exp_avg"]]
            exp_avg_sq = [v[a:b] for v in self.state["exp_avg_sq"]]
            torch._foreach_lerp_(exp_avg, grads, 1 - beta1)
            torch._foreach_mul_(exp_avg_sq, beta2)
            squares = torch._foreach_mul(grads, 1 - beta2)
            torch._foreach_mul_(squares, grads)
            torch._foreach_add_(exp_avg_sq, squares)
            denom = torch._foreach_sqrt(exp_avg_sq)
            torch._foreach_div_(denom, bias_correction2_sqrt)
            torch._foreach_add_(denom, eps)
            step_size = torch.tensor([lr / bias_correction1 for lr in lrs], dtype=params[0].dtype,
                                     device=params[0].device)
            updates = [m * step_size.view(-1, *([1] * (m.dim() - 1))) for m in exp_avg]
            torch._foreach_div_(updates, denom)
            torch._foreach_sub_(params, updates)
        else:
            _, weight_decay, _, _ = key
            if weight_decay:
                grads = torch._foreach_add(grads, params, alpha=weight_decay)
            lr = torch.tensor(lrs, dtype=params[0].dtype, device=params[0].device)
            torch._foreach_sub_(params, [g * lr.view(-1, *([1] * (g.dim() - 1))) for g in grads])
        for k in range(a, b):
            self.optimizers[k]._opt_called = True  # type: ignore[attr-defined]  # torch's LR schedulers check it
