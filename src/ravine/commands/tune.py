"""``ravine tune``: LR range test, grid / random / log-then-fine search, k-fold CV and Optuna for one optimizer."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ravine.commands.common import (DebugOpt, DeviceOpt, OutOpt, SeedOpt, console, guard, out_dir,
                                   parse_batch_size, problem_for, plain_line)
from ravine.errors import ConfigError

METHOD_HELP = "range-test, grid, random, log-then-fine or optuna."


# said when every rerun seed gave the same initial weights (see ravine.tune.search.rerun)
SAME_START = ("the seeds all start from the same weights (this problem initializes them to zeros), "
              "so the reruns repeat one run and their spread is 0 by construction")


def tune(
    problem: Annotated[str | None, typer.Option(help="Problem name (see `ravine problems`; default: csv or npz with "
                                                     "--data, else digits-mlp).")] = None,
    optimizer: Annotated[str, typer.Option(help="A first-order optimizer (see `ravine optimizers`).")] = "adam",
    method: Annotated[str, typer.Option(help=METHOD_HELP)] = "log-then-fine",
    space: Annotated[list[str] | None, typer.Option(
        help="Searched parameter; repeat. name=a,b,c (choices) or name=low:high[:log][:num] (range). Names: lr, "
             "momentum, beta1, beta2, weight_decay, batch_size, epochs, schedule, schedule.<arg>. "
             "Default: lr=1e-4:1:log:9.")] = None,
    folds: Annotated[int | None, typer.Option(help="k-fold cross-validation over train ∪ validation "
                                                   "(stratified for classes).")] = None,
    trials: Annotated[int, typer.Option(help="Trials for random and optuna (per worker for optuna).")] = 20,
    storage: Annotated[str | None, typer.Option(
        help="Optuna storage: a journal file path or a database URL (postgresql://user@host/db); default: "
             "OUT/study.journal. Workers on several machines pass the same URL and --study.")] = None,
    study: Annotated[str | None, typer.Option(help="Study name shared by workers (default: problem-optimizer-"
                                                   "method).")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes on this machine sharing the study.")] = 1,
    epochs: Annotated[int | None, typer.Option(help="Epochs per trial (default: the problem's).")] = None,
    batch_size: Annotated[str, typer.Option(help="Minibatch size or 'auto' (the problem's).")] = "auto",
    seeds: Annotated[int, typer.Option(help="Reruns of the best configuration (initial weights).")] = 3,
    batch: Annotated[int, typer.Option(help="Trials a worker trains together as one batched run.")] = 8,
    data: Annotated[Path | None, typer.Option(help="CSV or NPZ file for the csv / npz problems.")] = None,
    target_column: Annotated[str | None, typer.Option(help="Target column of a CSV file.")] = None,
    iterations: Annotated[int, typer.Option(help="Steps of the LR range test.")] = 300,
    lr_min: Annotated[float, typer.Option(help="First (smallest) rate of the LR range test.")] = 1e-5,
    lr_max: Annotated[float, typer.Option(help="Last (largest) rate of the LR range test.")] = 10.0,
    no_rerun: Annotated[bool, typer.Option("--no-rerun", help="Skip the rerun of the best configuration.")]
    = False,
    out: OutOpt = None, seed: SeedOpt = 0, device: DeviceOpt = "cpu", debug: DebugOpt = False,
) -> None:
    """Tune one optimizer's hyperparameters on one problem; the test split is never used by the search.

    Writes under --out: tune.json ({"problem", "optimizer", "method", "metric_name", "higher_is_better",
    "folds", "space", "defaults", "trials": [{"number", "config", "folds": [{"fold", "val_metric", "val_loss",
    "train_loss", "status", "curve"}], "score" (mean final validation metric over folds), "status", "time"
    (seconds), "stage"}], "best": {"number", "config", "score"}, "range_test": {"lr", "smoothed", "median",
    "suggestion", "lr_at_min", "at_edge" ("low" / "high" when the minimum lies at the start / end
    of the swept range: the suggestion is unreliable, widen --lr-min / --lr-max; else null), "rule", ...} or null, "rerun": {"seeds", "val", "test": {"median", "iqr", "min", "max"}},
    "storage", "study", "wall_time"}), report.html and figures/*.png (loss vs lr, lr sensitivity, parallel
    coordinates).
    """

    problem = problem_for(problem, data)

    def run() -> None:
        from ravine import problems
        from ravine.tune.run import METHODS
        from ravine.tune.run import tune as tune_fn

        if method not in METHODS:
            raise ConfigError(f"Invalid --method: {method!r} (allowed: {', '.join(METHODS)})")
        if workers < 1 or workers > (os.cpu_count() or 1):
            raise ConfigError(f"Invalid --workers: {workers} (allowed: 1 … {os.cpu_count() or 1}, the cores here)")
        if workers > 1 and method in ("range-test", "log-then-fine"):
            raise ConfigError(f"Invalid --workers: {workers} for {method} (allowed: 1; several workers share "
                              "a study: --method grid, random or optuna)")
        recipe = problems.get(problem)
        options: dict[str, Any] = {}
        for key, flag, value in (("data", "--data", data), ("target", "--target-column", target_column)):
            if value is not None:
                if key not in recipe.options:
                    raise ConfigError(f"Invalid option {flag} for problem {problem!r} (allowed: csv and npz "
                                      "problems)")
                options[key] = str(value)
        bs = parse_batch_size(batch_size)
        folder = out_dir(out, "tune")
        store = storage
        if store is None and (workers > 1 or method == "optuna"):  # the embedded default: a journal file
            store = str(folder / "study.journal")
        children = _spawn(workers - 1, folder, store, study or f"{problem}-{optimizer}-{method}")
        try:
            with _progress() as bar:
                result = tune_fn(problem, optimizer, method, space=space, folds=folds, trials=trials,
                                 storage=store, study=study, epochs=epochs, batch_size=bs, seed=seed,
                                 rerun_seeds=seeds, batch=batch, problem_options=options, device=device,
                                 out_dir=None, progress=bar, rerun_best=False, range_iterations=iterations,
                                 range_lr=(lr_min, lr_max))
        finally:
            codes = [c.wait() for c in children]
        if any(codes):
            raise ConfigError(f"Invalid run: a worker exited with {max(codes)} (see its output above)")
        if children:  # the others are done: read every trial from the study once more
            result = tune_fn(problem, optimizer, method, space=space, folds=folds, trials=trials, storage=store,
                             study=study, epochs=epochs, batch_size=bs, seed=seed, rerun_seeds=seeds,
                             batch=batch, problem_options=options, device=device, out_dir=None,
                             rerun_best=False, collect=True)
        _finish(result, folder, seeds, no_rerun, problem, optimizer, method, space, folds, epochs, bs, seed,
                options, device)

    guard(debug, run)


def _finish(result: dict[str, Any], folder: Path, seeds: int, no_rerun: bool, *args: Any) -> None:
    from ravine.tune import search as srch
    from ravine.tune.report import write_report
    from ravine.utils import write_json

    problem, optimizer, method, space, folds, epochs, bs, seed, options, device = args
    if result["best"] and not no_rerun:
        ctx = srch.prepare(problem, optimizer, seed=seed, epochs=epochs, batch_size=bs, problem_options=options,
                           device=device)
        result["rerun"] = srch.rerun(ctx, result["best"]["config"], seeds=seeds)
    write_json(folder / "tune.json", result)
    write_report(folder, result)
    _print(result)
    plain_line(f"wrote {folder / 'tune.json'} and {folder / 'report.html'}")


def _print(result: dict[str, Any]) -> None:
    rt = result.get("range_test")
    if rt:
        console.print(f"range test ({result['optimizer']}): suggested lr {rt['suggestion']:.4g} "
                      f"(minimum of the smoothed loss at {rt['lr_at_min']:.4g}; rule: valley/10)")
        edge = rt.get("at_edge")
        if edge:
            flag, where = ("--lr-min", "start") if edge == "low" else ("--lr-max", "end")
            console.print(f"[yellow]unreliable:[/] the minimum lies at the {where} of the swept range "
                          f"({rt['settings']['lr_min']:.3g} … {rt['settings']['lr_max']:.3g}); widen the range "
                          f"with {'a smaller' if edge == 'low' else 'a larger'} {flag} and run it again",
                          highlight=False)
    trials = result.get("trials") or []
    if trials:
        ok = sum(t.get("status") == "ok" for t in trials)
        console.print(f"{len(trials)} trials ({ok} ok), metric: final validation {result['metric_name']} "
                      f"(mean over {result['folds']} fold{'s' if result['folds'] > 1 else ''})")
    best = result.get("best")
    if best:
        cfg = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in best["config"].items())
        console.print(f"best: {escape(cfg)} → {best['score']:.4g}")
    rr = result.get("rerun")
    if rr:
        console.print(f"rerun over {rr['seeds']} seeds: validation median {rr['val']['median']:.4g} "
                      f"(IQR {rr['val']['iqr']:.3g}), test median {rr['test']['median']:.4g} "
                      f"(IQR {rr['test']['iqr']:.3g})")
        if rr.get("same_start"):
            console.print(f"  note: {SAME_START}", highlight=False)


def _spawn(n: int, folder: Path, storage: str | None, study: str) -> list[subprocess.Popen]:
    """Start ``n`` more workers: this command again, one worker each, on the same storage and study."""
    if n <= 0:
        return []
    argv = list(sys.argv[1:])
    cleaned: list[str] = []
    skip = False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg in ("--workers", "--out", "--storage", "--study"):
            skip = True
            continue
        if arg.startswith(("--workers=", "--out=", "--storage=", "--study=")):
            continue
        cleaned.append(arg)
    if cleaned and cleaned[0] != "tune":
        cleaned = ["tune", *[a for a in cleaned if a != "tune"]]
    procs = []
    for k in range(1, n + 1):
        cmd = [sys.executable, "-m", "ravine", *cleaned, "--workers", "1", "--out", str(folder / f"worker-{k}"),
               "--storage", str(storage), "--study", study, "--no-rerun"]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL))
    return procs


class _Bar:
    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("tune", total=None)

    def __call__(self, done: int, total: int, stage: str) -> None:
        self.progress.update(self.task, completed=done, total=total or None, description=stage or "tune")


def _progress() -> Any:
    if not console.is_terminal:
        return nullcontext(None)
    prog = Progress(TextColumn("[bold cyan]{task.description:>14}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=False)

    class _Ctx:
        def __enter__(self) -> _Bar:
            prog.__enter__()
            return _Bar(prog)

        def __exit__(self, *exc: Any) -> None:
            prog.__exit__(*exc)

    return _Ctx()
