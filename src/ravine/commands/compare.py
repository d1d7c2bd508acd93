"""``ravine compare``: the main job — several optimizers, one problem, one report."""

from __future__ import annotations

import math
from pathlib import Path
from collections.abc import Iterable
from typing import Annotated, Any

import typer
from rich.markup import escape

from ravine.commands.common import (DebugOpt, DeviceOpt, Interrupted, OutOpt, SeedOpt, console, guard, out_dir,
                                   parse_batch_size, print_table, problem_for, problem_options, plain_line)
from ravine.commands.progress import run_bars
from ravine.errors import ConfigError, DivergenceError, check_range


def parse_lr(text: str | None) -> dict[str, float]:
    """``"0.1"`` → ``{"*": 0.1}``; ``"sgd=0.1,adam=1e-3"`` → per optimizer.

    Each name (or the one bare number) appears once; every value is a finite number
    > 0 (``1e-400`` underflows to 0 and is refused with the text the user typed).

    Example:
        >>> parse_lr("sgd=0.1,adam=1e-3")
        {'sgd': 0.1, 'adam': 0.001}
    """
    if text is None:
        return {}
    allowed = "a number > 0, or name=number pairs separated by commas, each name once, e.g. sgd=0.1,adam=0.001"
    out: dict[str, float] = {}
    for part in text.split(","):
        key, sep, value = part.strip().rpartition("=")
        key = key.strip()
        if (sep and not key) or not value.strip():
            raise ConfigError(f"Invalid --lr: {text!r} (allowed: {allowed})")
        name = key or "*"
        if name in out:
            what = f"{key} twice" if key else "two numbers"
            raise ConfigError(f"Invalid --lr: {text!r} has {what} (allowed: {allowed})")
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"Invalid --lr: {part.strip()!r} (allowed: {allowed})") from None
        if not (math.isfinite(number) and number > 0):
            raise ConfigError(f"Invalid --lr: {part.strip()!r} is {number:g} (allowed: {allowed})")
        out[name] = number
    return out


def parse_kv(items: list[str] | None, field: str, list_keys: Iterable[str] = ()) -> dict[str, Any]:
    """``["k=0.1", "every=5"]`` → ``{"k": 0.1, "every": 5}`` (numbers parsed, else kept as text).

    ``key=[5]``, ``key=5,`` and any key in ``list_keys`` (the schedule's list-valued
    hyperparameters) give a list, so a piecewise schedule with one boundary is
    ``--schedule-arg boundaries=5 --schedule-arg values=1,0.1``.

    Example:
        >>> parse_kv(["boundaries=5", "values=1,0.1"], "--schedule-arg", ["boundaries", "values"])
        {'boundaries': [5], 'values': [1, 0.1]}
    """
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or not value.strip():
            raise ConfigError(f"Invalid {field}: {item!r} (allowed: key=value, or key=v1,v2 for a list)")
        if key in out:
            raise ConfigError(f"Invalid {field}: {key} given twice (allowed: each key once)")
        bracketed = value.strip()[:1] in "[(" and value.strip()[-1:] in "])"
        parts = [_number(v) for v in value.strip().strip("[]()").split(",") if v.strip()]
        if not parts:
            raise ConfigError(f"Invalid {field}: {item!r} (allowed: key=value, or key=v1,v2 for a list)")
        is_list = bracketed or "," in value or key in list_keys
        out[key] = parts if is_list else parts[0]
    return out


def _number(text: str) -> Any:
    """``"5"`` → 5, ``"0.5"`` → 0.5, anything else stays text."""
    for kind in (int, float):
        try:
            return kind(text.strip())
        except ValueError:
            pass
    return text.strip()


def check_target(target: float | None, metric: str) -> None:
    """The target must be a value the metric can take: accuracy in [0, 1], an error (rmse) >= 0."""
    if target is None:
        return
    if "accuracy" in metric and "rmse" not in metric:
        check_range("--target", target, 0.0, 1.0, error=ConfigError)
    else:
        check_range("--target", target, 0.0, error=ConfigError)


def _fmt(value: Any, spec: str = ".4g") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return format(value, spec) if isinstance(value, float) else str(value)


def _verdict(diagnosis: Any) -> str:
    """The diagnosis cell: its kind, and since when (``overfitting since epoch 4``)."""
    began = diagnosis.extra.get("began_at")
    since = f" since {diagnosis.extra.get('began_unit', 'epoch')} {began}" if began is not None else ""
    held = " (val loss only)" if diagnosis.kind == "overfitting" and diagnosis.numbers.get("metric_held") else ""
    return diagnosis.kind.split(" (")[0] + held + since


def _print_summary(results: Any) -> None:
    metric = results.metric_name
    target = results.target
    columns = [("optimizer", "name"), ("lr", "num"), ("batch", "num"), ("train loss", "num"),
               (f"best val {metric}", "num"), (f"test {metric}", "num"), ("epochs to target", "num"),
               ("wall s", "num"), ("diagnosis", "text")]
    rows = []
    for name, run in results.runs.items():
        s = run.summary
        rows.append([name, _fmt(run.spec.lr, ".6g"), str(run.spec.batch_size), _fmt(s.final_train_loss, ".4g"),
                     _fmt(s.best_val_metric, ".4g"), _fmt(s.test_metric, ".4g"), _fmt(s.epochs_to_target),
                     _fmt(s.wall_time, ".1f"), _verdict(run.diagnosis)])
    notes = [f"epochs to target: the first epoch whose validation {metric} reached {_fmt(target)} (— never); "
             f"best val: the best validation {metric} over the epochs; test: at the end; "
             "batch: the resolved minibatch size",
             "wall s: wall-clock seconds of the whole run (the report's 'seconds to target' stops at the target)"]
    shared = [run.batched_with for run in results.runs.values() if len(run.batched_with) > 1]
    if shared:
        from ravine.report.html import batched_note

        notes.append(batched_note(shared))
    print_table(f"ravine compare · {results.problem} · {results.epochs} epochs · seed {results.seed}",
                columns, rows, notes)
    for name, run in results.runs.items():
        if run.summary.status != "ok":
            console.print(f"[bold red]{escape(name)}[/]: {escape(run.summary.message)}")


def compare(
    problem: Annotated[str | None, typer.Option(help="Problem name (see `ravine problems`; default: csv or npz with "
                                                     "--data, else digits-mlp).")] = None,
    optimizers: Annotated[str, typer.Option(help="Comma list of optimizer names (see `ravine optimizers`); "
                                                 "default: sgd, momentum, nesterov, adagrad, rmsprop, adam.",
                                            show_default=False)] =
    "sgd,momentum,nesterov,adagrad,rmsprop,adam",
    epochs: Annotated[int | None, typer.Option(help="Epochs for every run (default: the problem's).")] = None,
    batch_size: Annotated[str, typer.Option(help="Minibatch size, 'full', or 'auto' (the problem's).")] = "auto",
    lr: Annotated[str | None, typer.Option(help="Learning rate for all, e.g. 0.1, or per optimizer, "
                                                "e.g. sgd=0.1,adam=0.01 (each name once); default: the problem's.")]
    = None,
    schedule: Annotated[str | None, typer.Option(help="Learning-rate schedule (see `ravine schedules`).")] = None,
    schedule_arg: Annotated[list[str] | None, typer.Option(help="Schedule hyperparameter key=value, or key=v1,v2 "
                                                                "for a list (boundaries=5 is a one-item list); "
                                                                "repeat.")]
    = None,
    target: Annotated[float | None, typer.Option(help="Validation metric for 'time to target' (accuracy in "
                                                      "[0, 1], rmse >= 0; default: the problem's).")] = None,
    data: Annotated[Path | None, typer.Option(help="CSV or NPZ file for the csv / npz problems.")] = None,
    target_column: Annotated[str | None, typer.Option(help="Target column of a CSV file.")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Folder with MNIST / Fashion-MNIST IDX files.")] = None,
    standardize: Annotated[bool | None, typer.Option("--standardize/--no-standardize",
                                                     help="Standardize inputs (problems that offer it).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Finish an interrupted comparison in --out: only the "
                                         "runs missing from its results.json are trained.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Start over in an --out that holds an interrupted "
                                            "comparison (without it, such a folder is refused: --resume "
                                            "finishes it).")] = False,
    sequential: Annotated[bool, typer.Option("--sequential", help="Train the runs one after another (default: "
                                             "first-order runs sharing a batch size train as one batched "
                                             "computation; same results to rounding).")] = False,
    curvature: Annotated[bool, typer.Option("--curvature", help="Also measure λ_max of the training-loss Hessian "
                                            "at the start and end of each run, and note runs whose lr exceeded "
                                            "2/λ_max (runs.<opt>.extras.curvature).")] = False,
    out: OutOpt = None, seed: SeedOpt = 0, device: DeviceOpt = "auto", debug: DebugOpt = False,
) -> None:
    """Train one problem with several optimizers (same seed, initial weights and budget) and report.

    Writes under --out: results.json ({"problem", "metric_name", "target", "reference_error", "epochs", "seed",
    "complete", "missing", "runs": {optimizer: {"spec", "history", "summary", "diagnosis", "extras"}}}; spec holds
    the resolved settings (lr, batch size, every hyperparameter, schedule); history holds per iteration
    step/loss/loss_ema/lr/momentum/grad_evals/time and per epoch train/val loss and metric, lr and time),
    report.html (self-contained, figures embedded), figures/*.png and runs/<optimizer>/ with the metric files.
    Ctrl-C writes what finished; --resume finishes the rest.
    """

    problem = problem_for(problem, data)

    def run() -> None:
        from ravine import problems
        from ravine.compare import compare as compare_fn
        from ravine.train.config import check_run_settings

        names = [n.strip() for n in optimizers.split(",")]
        if not all(names):
            raise ConfigError(f"Invalid --optimizers: {optimizers!r} (allowed: names separated by single commas, "
                              "e.g. sgd,adam; `ravine optimizers` lists them)")
        recipe = problems.get(problem)
        options = problem_options(recipe, data=data, target=target_column, data_dir=data_dir,
                                  standardize=standardize)
        bs = parse_batch_size(batch_size)
        rates = parse_lr(lr)
        check_run_settings(epochs=epochs, batch_size=bs, seed=seed,
                           names={"epochs": "--epochs", "batch_size": "--batch-size", "seed": "--seed"})
        check_target(target, recipe.metric)
        if schedule_arg and not schedule:
            raise ConfigError("Invalid --schedule-arg: it needs --schedule NAME (see `ravine schedules`)")
        sched = None
        if schedule:
            from ravine import schedules

            list_keys = [k for k, v in schedules.info(schedule).defaults.items() if isinstance(v, list | tuple)]
            sched = {"name": schedule, **parse_kv(schedule_arg, "--schedule-arg", list_keys)}
        if resume and out is None:
            raise ConfigError("Invalid --resume: it needs --out DIR, the folder of the comparison to continue")
        folder = out_dir(out, "compare")
        if not resume and not overwrite:
            _keep_interrupted(folder)
        if not resume:
            _clear_earlier(folder)
        from ravine.train.results import CompareInterrupted

        try:
            with run_bars() as bars:
                results = compare_fn(problem, names, epochs=epochs, batch_size=bs, lr=rates,
                                     schedule=sched, problem_options=options, target=target, seed=seed,
                                     device=device, out_dir=folder, progress=bars, resume=resume,
                                     curvature=curvature, sequential=sequential)
        except CompareInterrupted as stop:
            raise Interrupted(_interrupted_message(stop.result, folder)) from None
        _print_summary(results)
        if curvature:
            from ravine.report.notes import curvature_note

            for line in curvature_note(results):
                console.print(escape(line), highlight=False)
        plain_line(f"wrote {folder / 'report.html'}")
        if all(run.summary.status != "ok" for run in results.runs.values()):
            raise DivergenceError("every run diverged (see the messages above); lower the learning rates")

    guard(debug, run)


def _interrupted_message(result: Any, folder: Path) -> str:
    """What a Ctrl-C kept and the command that finishes the comparison (one line)."""
    done = ", ".join(result.runs) or "none"
    if not result.missing:
        return (f"interrupted while writing the report: every run ({done}) is in {folder / 'results.json'}; "
                f"write the report with the same options and --resume --out {folder}")
    return (f"interrupted: finished runs ({done}) written to {folder / 'results.json'}; missing: "
            f"{', '.join(result.missing)}; finish them with the same options and --resume --out {folder}")


def _clear_earlier(folder: Path) -> None:
    """Starting afresh where an earlier comparison was written: remove its outputs first (its
    results.json, report, figures and the run folders it lists), so that no run of the old
    comparison is left beside the new one; anything else in the folder is kept. Says so."""
    import json
    import shutil

    try:
        saved = json.loads((folder / "results.json").read_text())
    except (OSError, ValueError):
        return
    runs = list(saved.get("runs") or {}) if isinstance(saved, dict) else []
    for name in runs:
        if isinstance(name, str) and name and "/" not in name and name not in (".", ".."):
            shutil.rmtree(folder / "runs" / name, ignore_errors=True)
    shutil.rmtree(folder / "figures", ignore_errors=True)
    for leftover in ("report.html", "results.json"):
        (folder / leftover).unlink(missing_ok=True)
    try:
        (folder / "runs").rmdir()  # only when nothing else is in it
    except OSError:
        pass
    plain_line(f"replacing the earlier comparison in {folder} (runs: {', '.join(runs) or 'none'})")


def _keep_interrupted(folder: Path) -> None:
    """Refuse to start over on an interrupted comparison: its finished runs would be lost."""
    import json

    try:
        saved = json.loads((folder / "results.json").read_text())
    except (OSError, ValueError):
        return
    if isinstance(saved, dict) and saved.get("complete") is False:
        raise ConfigError(f"Invalid --out: {folder} holds an interrupted comparison (finished: "
                          f"{', '.join(saved.get('runs') or {}) or 'none'}) (allowed: --resume to finish it, "
                          "--overwrite to start over, or another --out)")
