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


def main() -> None:
    """Entry point of the ``ravine`` console script."""
    try:
        app()
    except common.RavineExit as exc:  # raised by common.guard after printing
        sys.exit(exc.code)


if __name__ == "__main__":  # pragma: no cover
    main()
