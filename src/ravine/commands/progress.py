"""Rich progress displays shared by the commands: one bar per stage or per run, only on a terminal.

Piped output and ``TERM=dumb`` get no bars (Rich's ``Console.is_terminal`` is False), only the
summary the command prints at the end.
"""

from __future__ import annotations

import math
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ravine.commands.common import console


class StageBars(AbstractContextManager):
    """``bars(stage, done, total)``: creates the stage's bar on first use and moves it."""

    def __init__(self) -> None:
        self.progress: Progress | None = None
        self.tasks: dict[str, Any] = {}
        if console.is_terminal:
            self.progress = Progress(TextColumn("[bold cyan]{task.description:>18}"), BarColumn(),
                                     MofNCompleteColumn(), TimeElapsedColumn(), console=console)

    def __enter__(self) -> StageBars:
        if self.progress is not None:
            self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.progress is None:
            return
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(stage, total=total or None)
        self.progress.update(self.tasks[stage], completed=done, total=total or None)


class RunBars:
    """``bars(name)`` adds one bar for a run and returns the trainer's ``progress(done, total, info)``."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def __call__(self, name: str) -> Any:
        # Every field a column formats must exist from the first render: Rich renders the
        # bar before the first update arrives (a missing "loss" field was a KeyError in a terminal).
        task = self.progress.add_task(name, total=None, loss="")

        def update(done: int, total: int, info: dict[str, Any]) -> None:
            loss = info.get("loss")
            text = f"loss {loss:.4g}" if isinstance(loss, float) and math.isfinite(loss) else ""
            self.progress.update(task, completed=done, total=total or None, loss=text)

        return update


def run_bars() -> AbstractContextManager[RunBars | None]:
    """One bar per training run (``with run_bars() as bars: fit(..., progress=bars("sgd"))``); None when piped."""
    if not console.is_terminal:
        return nullcontext(None)
    prog = Progress(TextColumn("[bold cyan]{task.description:>15}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[loss]}"), TimeElapsedColumn(), console=console, transient=False)

    class _Bars(AbstractContextManager):
        def __enter__(self) -> RunBars:
            prog.__enter__()
            return RunBars(prog)

        def __exit__(self, *exc: Any) -> None:
            prog.__exit__(*exc)

    return _Bars()
