"""``ravine train CONFIG.toml``: one training run from a config file (a shell over ``train_from_config``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.markup import escape
from rich.table import Table

from ravine.commands.common import DebugOpt, OutOpt, console, err_console, guard, out_dir
from ravine.errors import ConfigError, DivergenceError

ConfigArg = Annotated[Path, typer.Argument(help="TOML config file (keys: see ravine.train.config).",
                                           show_default=False)]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its checkpoint.")]
NprocOpt = Annotated[int | None, typer.Option("--nproc", help="Data-parallel processes (DDP; default: config's).")]
SeedOverride = Annotated[int | None, typer.Option("--seed", help="Random seed (default: the config's).")]
DeviceOverride = Annotated[str | None, typer.Option("--device", help="cpu, cuda, cuda:N or auto (default: config's).")]


def train(config: ConfigArg, resume: ResumeOpt = False, nproc: NprocOpt = None, out: OutOpt = None,
          seed: SeedOverride = None, device: DeviceOverride = None, debug: DebugOpt = False) -> None:
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
    metrics.jsonl, history.json, config.json and report.html. Exit code 0 on
    success, 1 when training diverged, 2 on bad input.
    """
    guard(debug, _run, config, resume, nproc, out, seed, device)


def _run(config: Path, resume: bool, nproc: int | None, out: Path | None, seed: int | None,
         device: str | None) -> None:
    from ravine.train.config import load_config, train_from_config

    if resume and out is None:
        raise ConfigError("Invalid --resume: it needs --out DIR, the folder of the run to continue")
    cfg = load_config(config, seed=seed, device=device, nproc=nproc)
    folder = out_dir(out, "train")
    is_rank0 = os.environ.get("RANK", "0") == "0"
    with Progress(TextColumn("[bold cyan]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=console, transient=True,
                  disable=not is_rank0 or cfg.nproc > 1) as bar:
        task = bar.add_task(f"{cfg.problem} · {cfg.optimizer}", total=None, status="")

        def progress(done: int, total: int, info: dict[str, Any]) -> None:
            bar.update(task, completed=done, total=total,
                       status=f"epoch {info['epoch']}/{info['epochs']}  loss {info['loss']:.4g}")

        history = train_from_config(cfg, folder, resume=resume, progress=progress, raise_on_divergence=False)
    if not is_rank0:
        return
    from ravine import problems
    from ravine.compare import diagnose_history, summarize

    inst = problems.get(cfg.problem).build(seed=cfg.seed, **cfg.problem_options)  # for target and reference
    summary = summarize(history, inst.target)
    diagnosis = diagnose_history(history, inst.reference_error)
    _print_summary(cfg, history, summary, folder)
    console.print(f"[bold]diagnosis:[/] {escape(diagnosis['kind'] + ' — ' + diagnosis['explanation'])}",
                  highlight=False)
    _write_report(cfg, history, summary, diagnosis, inst, folder)
    if history["status"] == "diverged":
        raise DivergenceError(history["message"])


def _print_summary(cfg: Any, history: dict[str, Any], summary: dict[str, Any], folder: Path) -> None:
    metric = history["metric_name"]
    table = Table(title=f"ravine train · {cfg.problem} · {cfg.optimizer}")
    for col in ("status", "epochs", "steps", "train loss", f"best val {metric}", f"test {metric}", "seconds"):
        table.add_column(col, justify="right")
    table.add_row(summary["status"], str(summary["epochs_run"]), str(summary["iterations"]),
                  f"{summary['final_train_loss']:.4g}",
                  f"{summary['best_val_metric']:.4g} ({summary['best_val_epoch']})",
                  f"{summary['test_metric']:.4g}", f"{summary['wall_time']:.2f}")
    console.print(table)
    if history["status"] == "diverged":
        err_console.print(f"last good checkpoint kept in {escape(str(folder))}")
    console.print(f"wrote {folder}")


def _write_report(cfg: Any, history: dict[str, Any], summary: dict[str, Any], diagnosis: dict[str, Any],
                  inst: Any, folder: Path) -> None:
    try:
        from ravine.report import write_report
    except ImportError:  # the report module is optional for a training run
        console.print("report.html skipped (ravine.report is not available)")
        return
    lr = cfg.lr if cfg.lr is not None else (history["epoch"]["lr"] or [None])[0]
    results = {"problem": cfg.problem, "metric_name": history["metric_name"], "epochs": summary["epochs_run"],
               "batch_size": cfg.batch_size, "seed": cfg.seed, "device": cfg.device,
               "wall_time": history["wall_time"],
               "runs": {cfg.optimizer: {"history": history, "summary": summary,
                                        "hyper": {"lr": lr, **cfg.hyper}, "diagnosis": diagnosis}},
               "target": inst.target, "reference_error": inst.reference_error}
    write_report(folder, results, title=f"ravine train · {cfg.problem} · {cfg.optimizer}")
