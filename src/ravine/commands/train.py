"""``ravine train CONFIG.toml``: one training run from a config file (a shell over ``train_from_config``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.markup import escape

from ravine.commands.common import (DebugOpt, Interrupted, OutOpt, console, err_console, guard, out_dir,
                                   print_table, plain_line)
from ravine.errors import ConfigError, DivergenceError

ConfigArg = Annotated[Path, typer.Argument(help="TOML config file (keys: see ravine.train.config).",
                                           show_default=False)]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its checkpoint.")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Start over in an --out that already holds a run "
                                                              "(its run files are deleted first).")]
NprocOpt = Annotated[int | None, typer.Option("--nproc", help="Data-parallel processes (DDP; default: config's).")]
SeedOverride = Annotated[int | None, typer.Option("--seed", min=0, max=2**32 - 1,
                                                  help="Random seed, 0 to 2^32-1 (default: the config's).")]
DeviceOverride = Annotated[str | None, typer.Option("--device", help="cpu, cuda, cuda:N or auto (default: config's).")]


def train(config: ConfigArg, resume: ResumeOpt = False, overwrite: OverwriteOpt = False, nproc: NprocOpt = None,
          out: OutOpt = None, seed: SeedOverride = None, device: DeviceOverride = None,
          debug: DebugOpt = False) -> None:
    r"""Train one run from a TOML config; [bold]--resume[/] continues it bit-identically.

    Config keys (all optional): problem, optimizer (a name, or an \[optimizer]
    table with name and hyperparameters), lr, epochs, batch_size (integer,
    "full" or "auto"), seed, device, dtype (float32 / float64), ema,
    eval_every, divergence_factor, nproc, and the tables \[hyper], \[schedule]
    (name + hyperparameters; \[\[schedule]] for several) and \[problem_options].
    Example: problem = "digits-mlp", optimizer = "momentum", lr = 0.05,
    epochs = 20, \[hyper] momentum = 0.9.

    Writes under --out: checkpoint.pt (every epoch, atomic), iterations.csv
    (step, epoch, loss, loss_ema, lr, momentum), epochs.csv (epoch, iteration,
    time, train_loss, train_metric, val_loss, val_metric, lr), evals.csv,
    metrics.jsonl, history.json, config.json, result.json (the resolved
    settings, history, summary and diagnosis; schema in ravine.train.results)
    and report.html. An --out that already holds a run needs --resume
    (continue) or --overwrite (start over). Exit code 0 on success, 1 when
    training diverged, 2 on bad input, 130 on Ctrl-C (the last finished epoch
    is kept; the message says how to resume).
    """
    guard(debug, _run, config, resume, overwrite, nproc, out, seed, device)


#: files of a run folder; one of the first two means the folder holds a run
RUN_FILES = ("checkpoint.pt", "history.json", "config.json", "iterations.csv", "epochs.csv", "evals.csv",
             "metrics.jsonl", "result.json", "report.html")


def _claim_folder(folder: Path, resume: bool, overwrite: bool) -> None:
    """Refuse to mix two runs in one folder; --overwrite clears the old run's files."""
    held = [name for name in RUN_FILES[:2] if (folder / name).exists()]
    if resume:
        if not (folder / "checkpoint.pt").exists():
            raise ConfigError(f"Invalid --resume: {folder} holds no checkpoint.pt (allowed: the --out of an "
                              "earlier `ravine train`)")
        return
    if held and not overwrite:
        raise ConfigError(f"Invalid --out: {folder} already holds a run ({held[0]}) (allowed: --resume to "
                          "continue it, --overwrite to start over, or another --out)")
    if overwrite:
        import shutil

        for name in RUN_FILES:
            (folder / name).unlink(missing_ok=True)
        shutil.rmtree(folder / "tensorboard", ignore_errors=True)


def _run(config: Path, resume: bool, overwrite: bool, nproc: int | None, out: Path | None, seed: int | None,
         device: str | None) -> None:
    from ravine.train.config import load_config, train_from_config

    if resume and out is None:
        raise ConfigError("Invalid --resume: it needs --out DIR, the folder of the run to continue")
    if resume and overwrite:
        raise ConfigError("Invalid --overwrite: together with --resume (allowed: one of the two)")
    cfg = load_config(config, seed=seed, device=device, nproc=nproc)
    if resume and out is not None and not out.is_dir():  # refused before out_dir would create it
        raise ConfigError(f"Invalid --resume: {out} holds no checkpoint.pt (no such folder; allowed: the --out of an "
                          "earlier `ravine train`)")
    folder = out_dir(out, "train")
    _claim_folder(folder, resume, overwrite)
    is_rank0 = os.environ.get("RANK", "0") == "0"
    with Progress(TextColumn("[bold cyan]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=console, transient=True,
                  disable=not is_rank0 or cfg.nproc > 1) as bar:
        task = bar.add_task(f"{cfg.problem} · {cfg.optimizer}", total=None, status="")

        def progress(done: int, total: int, info: dict[str, Any]) -> None:
            bar.update(task, completed=done, total=total,
                       status=f"epoch {info['epoch']}/{info['epochs']}  loss {info['loss']:.4g}")

        try:
            history = train_from_config(cfg, folder, resume=resume, progress=progress, raise_on_divergence=False)
        except KeyboardInterrupt:
            raise Interrupted(_resume_hint(config, folder, cfg)) from None
    if not is_rank0:
        return
    try:
        _finish(cfg, history, folder)
    except KeyboardInterrupt:
        import shlex

        extra = f" --nproc {cfg.nproc}" if cfg.nproc > 1 else ""
        raise Interrupted(f"interrupted after training finished: the run is saved in {folder} (checkpoint.pt, "
                          f"history.json); write result.json and the report with: ravine train "
                          f"{shlex.quote(str(config))} --resume --out {shlex.quote(str(folder))}{extra}") from None
    if history.status == "diverged":
        raise DivergenceError(history.message)


def _finish(cfg: Any, history: Any, folder: Path) -> None:
    """The summary, diagnosis, result.json and report of a trained run."""
    from ravine import problems
    from ravine.compare import train_result
    from ravine.utils import sigint_deferred, write_json

    recipe = problems.get(cfg.problem)
    inst = recipe.build(seed=cfg.seed, **cfg.problem_options)  # for target and reference
    result = train_result(cfg.spec(instance=inst), history, inst, folder, recipe.error_unit)
    summary, diagnosis = result.summary, result.diagnosis
    _print_summary(cfg, history, summary, folder)
    console.print(f"[bold]diagnosis:[/] {escape(diagnosis.kind + ' — ' + diagnosis.explanation)}",
                  highlight=False)
    with sigint_deferred():
        write_json(folder / "result.json", result.to_json())
    _write_report(cfg, result, folder)


def _resume_hint(config: Path, folder: Path, cfg: Any) -> str:
    """What Ctrl-C kept and the command that continues the run."""
    import shlex

    from ravine.train.checkpoint import CHECKPOINT_NAME

    if not (folder / CHECKPOINT_NAME).exists():
        return f"interrupted before the first checkpoint; nothing to resume in {folder}"
    extra = f" --nproc {cfg.nproc}" if cfg.nproc > 1 else ""
    return (f"interrupted; the last finished epoch is saved in {folder / CHECKPOINT_NAME}; continue with: "
            f"ravine train {shlex.quote(str(config))} --resume --out {shlex.quote(str(folder))}{extra}")


def _print_summary(cfg: Any, history: Any, summary: Any, folder: Path) -> None:
    metric = history.metric_name
    columns = [("status", "name"), ("epochs", "num"), ("steps", "num"), ("train loss", "num"),
               (f"best val {metric} (epoch)", "num"), (f"test {metric}", "num"), ("wall s", "num")]
    row = [summary.status, str(summary.epochs_run), str(summary.iterations),
           f"{summary.final_train_loss:.4g}", f"{summary.best_val_metric:.4g} ({summary.best_val_epoch})",
           f"{summary.test_metric:.4g}", f"{summary.wall_time:.2f}"]
    print_table(f"ravine train · {cfg.problem} · {cfg.optimizer}", columns, [row],
                ["wall s: wall-clock seconds of the whole run, evaluations included"])
    if history.status == "diverged":
        err_console.print(f"last good checkpoint kept in {escape(str(folder))}")
    plain_line(f"wrote {folder}")


def _write_report(cfg: Any, result: Any, folder: Path) -> None:
    from ravine.report import write_report

    write_report(folder, result, title=f"ravine train · {cfg.problem} · {cfg.optimizer}")
