"""The ``ravine`` command line: a thin Typer shell over the public functions.

Every command takes ``--out DIR`` (default ``runs/<command>-<timestamp>``),
``--seed``, ``--device`` and ``--debug``; bad input prints one line and exits
with code 2 (a traceback only with ``--debug``). Each command's body lives in
``ravine.commands.<name>`` and calls one public function.
"""

from __future__ import annotations

import sys

import typer

from ravine.commands import common
from ravine.commands.bench import bench
from ravine.commands.compare import compare
from ravine.commands.listing import optimizers, problems, schedules
from ravine.commands.train import train

app = typer.Typer(
    name="ravine",
    help="Train networks with the course's optimizers and see why training behaves as it does.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

app.command("compare")(compare)
app.command("train")(train)
app.command("bench")(bench)
app.command("optimizers")(optimizers)
app.command("problems")(problems)
app.command("schedules")(schedules)


def _set_threads() -> None:
    # ravine's problems are small networks: a second intra-op thread costs more in wake-ups
    # than it gains (measured: digits-mlp 0.6 s per run on 1 thread, ~40 s on 2 threads of a
    # busy 2-core machine). RAVINE_NUM_THREADS or OMP_NUM_THREADS override this.
    import os

    import torch

    wanted = os.environ.get("RAVINE_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")
    try:
        torch.set_num_threads(max(1, int(wanted)) if wanted else 1)
    except ValueError:
        torch.set_num_threads(1)


def main() -> None:
    """Entry point of the ``ravine`` console script."""
    _set_threads()
    try:
        app()
    except common.RavineExit as exc:  # raised by common.guard after printing
        sys.exit(exc.code)


if __name__ == "__main__":  # pragma: no cover
    main()
