"""``ravine autodiff``: gradient checks per tensor, the backward graph, the course's worked examples."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from ravine.commands.common import (DebugOpt, DeviceOpt, OutOpt, SeedOpt, console, guard, out_dir, print_table,
                                    plain_line)

EXAMPLES = ("course", "sigmoid")


def autodiff(
    example: Annotated[str | None, typer.Option(
        "--example", help="course: f(x1, x2) = x1·x2 + sin(x2) node by node; sigmoid: L = 1/p, p = σ(wᵀx).")] = None,
    problem: Annotated[str | None, typer.Option(
        "--problem", help="A problem name (see ravine problems), or 'all' for every bundled one.")] = None,
    batch: Annotated[int, typer.Option("--batch", help="Training rows in the checked loss.")] = 64,
    max_coords: Annotated[int, typer.Option(
        "--max-coords", help="Coordinates checked per tensor (a seeded random subset of larger ones).")] = 20,
    eps: Annotated[float, typer.Option("--eps", help="Finite-difference step h.")] = 1e-6,
    rtol: Annotated[float, typer.Option("--rtol", help="Relative tolerance.")] = 1e-4,
    atol: Annotated[float, typer.Option("--atol", help="Absolute tolerance.")] = 1e-7,
    x1: Annotated[float, typer.Option("--x1", help="x1 of the course example.")] = 2.0,
    x2: Annotated[float, typer.Option("--x2", help="x2 of the course example.")] = 3.0,
    out: OutOpt = None,
    seed: SeedOpt = 0,
    device: DeviceOpt = "cpu",
    debug: DebugOpt = False,
) -> None:
    """Check gradients against finite differences and show the backward graph; writes DIR/autodiff.json.

    [bold]--problem P[/] (or all): builds P in float64 (seed), takes --batch training rows, compares autograd with
    central finite differences for every parameter tensor (pass when |g − g_fd| ≤ atol + rtol·|g_fd|), and
    records the backward graph (grad_fn nodes, shapes, ‖gradient‖ on every edge): DIR/graph-P.svg when
    Graphviz's dot is installed (apt install graphviz), else DIR/graph-P.txt; DIR/graph-P.dot always.
    [bold]--example course|sigmoid[/] (the default is course): the forward values and backward adjoints node by
    node, checked against torch.autograd.

    autodiff.json, problems: {problems: {P: {gradcheck: {passed, eps, rtol, atol, tensors: [{name, shape,
    checked, max_abs_error, max_rel_error, worst_index, worst_autograd, worst_fd, passed}]}, graph: {file,
    loss, nodes, edges}, parameter_norms: {name: norm}, layer_norms: [{layer, module, output_shape,
    output_grad_norm, param_grad_norm}]}}, seed, batch}. Examples: {example, course | sigmoid: {function,
    nodes: [{node, expression, value, adjoint, adjoint_rule}], autograd, match, ...}}.
    """
    guard(debug, _run, example, problem, batch, max_coords, eps, rtol, atol, x1, x2, out, seed, device)


def bundled_problems() -> list[str]:
    """Problems that need no user files (no ``data`` / ``data_dir`` option)."""
    from ravine import problems

    return [n for n in problems.names() if not {"data", "data_dir"} & set(problems.get(n).options)]


def _run(example: str | None, problem: str | None, batch: int, max_coords: int, eps: float, rtol: float,
         atol: float, x1: float, x2: float, out: Path | None, seed: int, device: str) -> None:
    from ravine.errors import DataError, check_int, check_range, unknown_name
    from ravine.utils import resolve_device, write_json

    dev = resolve_device(device)
    check_int("seed", seed, 0, error=DataError)
    if example is not None and problem is not None:
        raise DataError("Invalid options: both --example and --problem (allowed: one of them)")
    if problem is None:
        example = example or "course"
        if example not in EXAMPLES:
            raise unknown_name("example", example, EXAMPLES)
        check_range("x1", x1, error=DataError)
        check_range("x2", x2, error=DataError)
        result = _examples(example, x1, x2)
        path = out_dir(out, "autodiff")
        write_json(path / "autodiff.json", result)
        plain_line(f"wrote {path / 'autodiff.json'}")
        return
    from ravine import problems

    names = bundled_problems() if problem == "all" else [problem]
    for name in names:
        if name not in problems.names():
            raise unknown_name("problem", name, [*problems.names(), "all"])
    check_int("batch", batch, 1, error=DataError)
    import torch

    # build every problem first: a problem that needs a file fails here, before any output is made
    built = {name: problems.get(name).build(seed=seed, device=dev, dtype=torch.float64) for name in names}
    path = out_dir(out, "autodiff")
    results: dict[str, Any] = {}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("gradcheck", total=len(names))
        for name in names:
            bar.update(task, description=f"gradcheck {name}")
            results[name] = _check_problem(name, built[name], batch, max_coords, eps, rtol, atol, seed, path)
            bar.advance(task)
    write_json(path / "autodiff.json", {"problems": results, "seed": seed, "batch": batch})
    for name, res in results.items():
        _print_problem(name, res)
    if len(results) > 1:
        ok = [n for n, r in results.items() if r["gradcheck"]["passed"]]
        console.print(f"gradcheck passed on {len(ok)}/{len(results)} problems", highlight=False)
    plain_line(f"wrote {path / 'autodiff.json'}")


def _check_problem(name: str, inst: Any, batch: int, max_coords: int, eps: float, rtol: float, atol: float,
                   seed: int, path: Path) -> dict[str, Any]:
    from ravine import autodiff

    data = (inst.data.X_train[:batch], inst.data.y_train[:batch])
    check = autodiff.gradcheck(inst.model, inst.loss_fn, data, eps=eps, rtol=rtol, atol=atol,
                               max_coords=max_coords, seed=seed)
    g = autodiff.graph(inst.model, inst.loss_fn, data)
    file = g.render(path / f"graph-{name}")
    return {"gradcheck": check.to_dict(),
            "graph": {"file": file.name, "loss": g.loss, "nodes": [vars(n) for n in g.nodes],
                      "edges": [vars(e) for e in g.edges]},
            "parameter_norms": g.parameter_norms, "layer_norms": g.layer_norms}


def _print_problem(name: str, res: dict[str, Any]) -> None:
    gc = res["gradcheck"]
    # one-word headers: the shared table never wraps a number column's header
    columns = [("tensor", "name"), ("shape", "name"), ("checked", "num"), ("abs_err", "num"),
               ("rel_err", "num"), ("worst", "name"), ("result", "name")]
    rows = [[t["name"], "×".join(map(str, t["shape"])) or "scalar", str(t["checked"]), f"{t['max_abs_error']:.2e}",
             f"{t['max_rel_error']:.2e}", str(tuple(t["worst_index"])), "pass" if t["passed"] else "FAIL"]
            for t in gc["tensors"]]
    print_table(f"{name}: autograd vs finite differences", columns, rows,
                ["abs_err, rel_err: the largest |g − g_fd| and |g − g_fd| / max(|g|, |g_fd|, atol) over the checked "
                 "coordinates; worst: the coordinate furthest outside the tolerance",
                 f"pass: |g − g_fd| ≤ {gc['atol']:g} + {gc['rtol']:g}·|g_fd| at every checked coordinate"])
    columns = [("layer", "name"), ("module", "name"), ("output", "name"), ("‖∂L/∂out‖", "num"), ("‖∂L/∂θ‖", "num")]
    rows = [[row["layer"], row["module"], "×".join(map(str, row["output_shape"])), _num(row["output_grad_norm"]),
             _num(row["param_grad_norm"])] for row in res["layer_norms"]]
    print_table(f"{name}: gradient flow by layer (loss {res['graph']['loss']:.6g})", columns, rows,
                [f"backward graph: {len(res['graph']['nodes'])} nodes → {res['graph']['file']}"])


def _num(v: float | None) -> str:
    return "—" if v is None else f"{v:.4g}"


def _examples(example: str, x1: float, x2: float) -> dict[str, Any]:
    from ravine import autodiff

    if example == "course":
        ex = autodiff.course_example(x1, x2)
        _print_nodes(ex["function"], ex["nodes"])
        auto = ex["autograd"]
        console.print(f"torch.autograd: ∂f/∂x1 = {auto['x1']:.12g}, ∂f/∂x2 = {auto['x2']:.12g} → "
                      f"{'match' if ex['match'] else 'MISMATCH'}", highlight=False)
        return {"example": "course", "course": ex}
    both = {loss: autodiff.sigmoid_example(loss=loss) for loss in ("inverse", "log")}
    for loss, ex in both.items():
        _print_nodes(ex["function"], ex["nodes"])
        console.print(f"w̄ by hand {_vec(ex['grad_w'])}, torch.autograd {_vec(ex['autograd'])} → "
                      f"{'match' if ex['match'] else 'MISMATCH'}; simplified −(1 − σ(wᵀx)) x = "
                      f"{_vec(ex['simplified'])} {'equals' if ex['simplified_matches'] else 'differs from'} it",
                      highlight=False)
    console.print("The simplified form −(1 − σ(wᵀx)) xᵀ is the gradient of log(1/p) = −log σ(wᵀx); "
                  "for L = 1/p the gradient keeps the factor 1/σ(wᵀx).", highlight=False)
    return {"example": "sigmoid", "sigmoid": both}


def _vec(v: list[float]) -> str:
    return "[" + ", ".join(f"{x:.6g}" for x in v) + "]"


def _print_nodes(title: str, nodes: list[dict[str, Any]]) -> None:
    columns = [("node", "name"), ("expression", "name"), ("value", "num"), ("adjoint", "num"), ("rule", "text")]
    rows = [[row["node"], row["expression"], f"{row['value']:.10g}", f"{row['adjoint']:.10g}", row["adjoint_rule"]]
            for row in nodes]
    print_table(title, columns, rows, ["adjoint: ∂(output)/∂(node), accumulated from the output back to the inputs"])
