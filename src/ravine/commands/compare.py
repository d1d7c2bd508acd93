"""``ravine compare``: the main job — several optimizers, one problem, one report."""

from __future__ import annotations

import math
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich import box
from rich.markup import escape
from rich.table import Table

from ravine.commands.common import DebugOpt, DeviceOpt, OutOpt, SeedOpt, console, guard, out_dir
from ravine.errors import ConfigError, DivergenceError


def parse_lr(text: str | None) -> dict[str, float]:
    """``"0.1"`` → ``{"*": 0.1}``; ``"sgd=0.1,adam=1e-3"`` → per optimizer.

    Example:
        >>> parse_lr("sgd=0.1,adam=1e-3")
        {'sgd': 0.1, 'adam': 0.001}
    """
    if not text:
        return {}
    out: dict[str, float] = {}
    for part in text.split(","):
        key, _, value = part.strip().rpartition("=")
        try:
            out[key.strip() or "*"] = float(value)
        except ValueError:
            raise ConfigError(f"Invalid --lr: {part!r} (allowed: a number, or name=number pairs separated "
                              "by commas, e.g. sgd=0.1,adam=0.001)") from None
    return out


def parse_kv(items: list[str] | None, field: str) -> dict[str, Any]:
    """``["k=0.1", "every=5"]`` → ``{"k": 0.1, "every": 5}`` (numbers parsed, else kept as text)."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"Invalid {field}: {item!r} (allowed: key=value, or key=v1,v2 for a list)")
        parts = [_number(v) for v in value.strip("[]()").split(",")]
        out[key] = parts if "," in value else parts[0]
    return out


def _number(text: str) -> Any:
    """``"5"`` → 5, ``"0.5"`` → 0.5, anything else stays text."""
    for kind in (int, float):
        try:
            return kind(text.strip())
        except ValueError:
            pass
    return text.strip()


def _fmt(value: Any, spec: str = ".4g") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return format(value, spec) if isinstance(value, float) else str(value)


def _print_summary(results: dict[str, Any]) -> None:
    metric = results.get("metric_name", "metric")
    target = results.get("target")
    table = Table(box=box.SIMPLE_HEAD, title=f"ravine compare · {results['problem']} · {results['epochs']} epochs · seed "
                        f"{results['seed']} · {metric} (target {_fmt(target)})")
    for col in ("optimizer", "lr", "train loss", "best val", "test", "to target", "sec", "diagnosis"):
        table.add_column(col, justify="left" if col in ("optimizer", "diagnosis") else "right",
                         no_wrap=col in ("optimizer", "diagnosis"))
    for name, run in results["runs"].items():
        s = run["summary"]
        table.add_row(name, _fmt(run["hyper"].get("lr"), ".3g"), _fmt(s["final_train_loss"], ".3g"),
                      _fmt(s["best_val_metric"], ".3g"), _fmt(s["test_metric"], ".3g"), _fmt(s["epochs_to_target"]),
                      _fmt(s["wall_time"], ".1f"), run["diagnosis"]["kind"].split(" (")[0])
    console.print(table)
    for name, run in results["runs"].items():
        if run["summary"]["status"] != "ok":
            console.print(f"[bold red]{name}[/]: {escape(run['summary']['message'])}")
    console.print(f"'to target': epochs until the validation {metric} first reached {_fmt(target)}")


def compare(
    problem: Annotated[str, typer.Option(help="Problem name (see `ravine problems`).")] = "digits-mlp",
    optimizers: Annotated[str, typer.Option(help="Comma list of optimizer names (see `ravine optimizers`).")] =
    "sgd,momentum,nesterov,adagrad,rmsprop,adam",
    epochs: Annotated[int | None, typer.Option(help="Epochs for every run (default: the problem's).")] = None,
    batch_size: Annotated[str, typer.Option(help="Minibatch size, 'full', or 'auto' (the problem's).")] = "auto",
    lr: Annotated[str | None, typer.Option(help="Learning rate for all ('0.1') or per optimizer "
                                                "('sgd=0.1,adam=0.001'); default: the problem's per optimizer.")]
    = None,
    schedule: Annotated[str | None, typer.Option(help="Learning-rate schedule (see `ravine schedules`).")] = None,
    schedule_arg: Annotated[list[str] | None, typer.Option(help="Schedule hyperparameter key=value; repeat.")]
    = None,
    target: Annotated[float | None, typer.Option(help="Validation metric for 'time to target'.")] = None,
    data: Annotated[Path | None, typer.Option(help="CSV or NPZ file for the csv / npz problems.")] = None,
    target_column: Annotated[str | None, typer.Option(help="Target column of a CSV file.")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Folder with MNIST / Fashion-MNIST IDX files.")] = None,
    standardize: Annotated[bool | None, typer.Option("--standardize/--no-standardize",
                                                     help="Standardize inputs (problems that offer it).")] = None,
    out: OutOpt = None, seed: SeedOpt = 0, device: DeviceOpt = "auto", debug: DebugOpt = False,
) -> None:
    """Train one problem with several optimizers (same seed, initial weights and budget) and report.

    Writes under --out: results.json ({"problem", "metric_name", "target", "reference_error", "epochs", "seed",
    "runs": {optimizer: {"hyper", "history", "summary", "diagnosis", "effective_step"}}}; history holds per
    iteration step/loss/loss_ema/lr/momentum and per epoch train/val loss and metric, lr and time), report.html
    (self-contained, figures embedded), figures/*.png and runs/<optimizer>/ with the metric CSV/JSONL files.
    """

    def run() -> None:
        from ravine import problems
        from ravine.compare import compare as compare_fn

        names = [n.strip() for n in optimizers.split(",") if n.strip()]
        options: dict[str, Any] = {}
        recipe = problems.get(problem)
        flags = {"data": "--data", "target": "--target-column", "data_dir": "--data-dir",
                 "standardize": "--standardize"}
        for key, value in (("data", data), ("target", target_column), ("data_dir", data_dir),
                           ("standardize", standardize)):
            if value is not None:
                if key not in recipe.options:
                    allowed = ", ".join(flags[k] for k in sorted(recipe.options) if k in flags) or "none"
                    raise ConfigError(f"Invalid option {flags[key]} for problem {problem!r} "
                                      f"(allowed for it: {allowed})")
                options[key] = str(value) if isinstance(value, Path) else value
        bs: int | str | None = batch_size
        if batch_size == "full":
            bs = None
        elif batch_size != "auto":
            try:
                bs = int(batch_size)
            except ValueError:
                raise ConfigError(f"Invalid --batch-size: {batch_size!r} (allowed: a positive integer, "
                                  "'full' or 'auto')") from None
        if schedule_arg and not schedule:
            raise ConfigError("Invalid --schedule-arg: it needs --schedule NAME (see `ravine schedules`)")
        sched = {"name": schedule, **parse_kv(schedule_arg, "--schedule-arg")} if schedule else None
        folder = out_dir(out, "compare")
        with _progress() as bars:
            results = compare_fn(problem, names, epochs=epochs, batch_size=bs, lr=parse_lr(lr), schedule=sched,
                                 problem_options=options, target=target, seed=seed, device=device,
                                 out_dir=folder, progress=bars)
        _print_summary(results)
        console.print(f"wrote {folder / 'report.html'}")
        if all(run["summary"]["status"] != "ok" for run in results["runs"].values()):
            raise DivergenceError("every run diverged (see the messages above); lower the learning rates")

    guard(debug, run)


class _Bars:
    """One Rich progress bar per optimizer, fed by the trainer's progress callback."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def __call__(self, name: str) -> Any:
        task = self.progress.add_task(name, total=None)

        def update(done: int, total: int, info: dict[str, Any]) -> None:
            loss = info.get("loss")
            self.progress.update(task, completed=done, total=total or None,
                                 loss=f"loss {loss:.4g}" if isinstance(loss, float) else "")

        return update


def _progress() -> Any:
    if not console.is_terminal:
        return nullcontext(None)
    prog = Progress(TextColumn("[bold cyan]{task.description:>14}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[loss]}"), TimeElapsedColumn(), console=console, transient=False)
    prog.columns[3].text_format = "{task.fields[loss]}"

    class _Ctx:
        def __enter__(self) -> _Bars:
            prog.__enter__()
            return _Bars(prog)

        def __exit__(self, *exc: Any) -> None:
            prog.__exit__(*exc)

    return _Ctx()
