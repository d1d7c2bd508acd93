"""Options and error handling shared by every command."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from ravine.errors import DivergenceError, RavineError
from ravine.utils import default_out

T = TypeVar("T")

console = Console()
err_console = Console(stderr=True)

OutOpt = Annotated[
    Path | None, typer.Option("--out", help="Output folder (default: runs/<command>-<timestamp>).")
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed; the same seed gives the same numbers.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:N or auto.")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show the full traceback on errors.")]


class RavineExit(Exception):
    """Carries an exit code from a command to ``ravine.cli.main``."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def out_dir(out: Path | None, command: str) -> Path:
    """The command's output folder, created."""
    path = out if out is not None else default_out(command)
    path.mkdir(parents=True, exist_ok=True)
    return path


def guard(debug: bool, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn``; on a ``RavineError`` print one line and exit 2 (1 for divergence)."""
    try:
        return fn(*args, **kwargs)
    except RavineError as exc:
        if debug:
            traceback.print_exc()
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        code = 1 if isinstance(exc, DivergenceError) else 2
        raise typer.Exit(code) from None
    except KeyboardInterrupt:
        err_console.print("interrupted")
        raise typer.Exit(130) from None


def exit_now(code: int) -> None:
    """Flush and exit with ``code`` (for use outside Typer's own exit handling)."""
    sys.stdout.flush()
    raise typer.Exit(code)
