"""Options and error handling shared by every command.

``guard`` turns a :class:`ravine.errors.RavineError` into one line on stderr and exit
code 2; ``out_dir`` checks, creates and locks the ``--out`` folder before any work.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from ravine.errors import ConfigError, DivergenceError, RavineError
from ravine.utils import default_out

T = TypeVar("T")

console = Console()
err_console = Console(stderr=True)

#: the narrowest a wrapping text column of a results table may get
MIN_TEXT_WIDTH = 12

#: at least this much free space on --out's disk, or the command refuses before working
MIN_FREE_BYTES = 16 * 2**20


def _parse_out(value: str) -> Path:
    """``--out``'s raw text → a Path (Typer would turn '' into '.', the current folder)."""
    if not value.strip():
        raise typer.BadParameter(f"{value!r} (allowed: a folder path, e.g. runs/demo)", param_hint="'--out'")
    return Path(value)


OutOpt = Annotated[
    Path | None,
    typer.Option("--out", parser=_parse_out, metavar="DIR",
                 help="Output folder (default: a new folder in runs/ named after the command and the time)."),
]
SeedOpt = Annotated[int, typer.Option("--seed", min=0, max=2**32 - 1,
                                      help="Random seed (0 to 2^32-1); the same seed gives the same numbers.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:N or auto.")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show the full traceback on errors.")]

# Lock files held by the running command (released by ``guard`` when the command ends).
_held_locks: list[int] = []
LOCK_NAME = ".ravine.lock"
# What ``out_dir`` created for the running command: the lock file, then the folders, deepest
# first (removed by ``guard`` when the command fails, each while it holds nothing else).
_created_paths: list[Path] = []


def error_line(message: str) -> None:
    """Print ``error: MESSAGE`` as exactly one line on stderr (never wrapped, never split)."""
    text = " ".join(part.strip() for part in str(message).splitlines() if part.strip())
    err_console.print(f"[bold red]error:[/] {escape(text)}", highlight=False, soft_wrap=True)


def bad_value_message(exc: Exception) -> str | None:
    """Typer's refusal of an option's value (``--seed abc``) in ravine's form, or None for other usage errors.

    Typer checks a typed option with pydantic and reports pydantic's text ("Input should be a
    valid integer, unable to parse string as an integer"); this names the option, the value and
    what is allowed instead: ``Invalid --seed: 'abc' (allowed: an integer in [0, 4294967295])``.
    """
    param, cause = getattr(exc, "param", None), exc.__cause__
    errors = getattr(cause, "errors", None)
    if param is None or not callable(errors):
        return None
    first = (errors() or [{}])[0]
    field = param.opts[0] if getattr(param, "opts", None) else str(param.name).upper()
    if "input" not in first:
        return None
    value = first["input"]
    try:
        shown = value if isinstance(value, str) and float(value) == float(value) else repr(value)  # -1, not '-1'
    except ValueError:
        shown = repr(value)
    kind = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    what = {int: "an integer", float: "a number"}.get(kind)
    if what is None:
        return f"Invalid {field}: {shown} ({first.get('msg', 'not accepted')})"
    if low is not None and high is not None:
        what += f" in [{low}, {high}]"
    elif low is not None or high is not None:
        what += f" >= {low}" if low is not None else f" <= {high}"
    return f"Invalid {field}: {shown} (allowed: {what})"


def warning_line(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: Any = None, line: str | None = None) -> None:
    """``warnings.showwarning`` for the command line: one ``warning: ...`` line, no source file or code line."""
    text = " ".join(part.strip() for part in str(message).splitlines() if part.strip())
    err_console.print(f"[yellow]warning:[/] {escape(text)}", highlight=False, soft_wrap=True)


def check_out(path: Path) -> None:
    """Refuse an ``--out`` that cannot hold the outputs, before any work is done.

    A file in the way, a name longer than the file system allows, a folder that
    cannot be created or written (read-only or foreign file system), or a disk with
    less than ``MIN_FREE_BYTES`` free: one :class:`ConfigError` line each.
    """
    text = str(path)
    for part in path.parts:
        if len(part.encode()) > 255:
            raise ConfigError(f"Invalid --out: a folder name of {len(part.encode())} bytes "
                              f"(allowed: at most 255 bytes per name)")
    if len(os.fsencode(path.absolute())) >= 4096:
        raise ConfigError("Invalid --out: the path is 4096 bytes or longer (allowed: shorter)")
    try:
        is_file = path.exists() and not path.is_dir()
    except OSError as exc:
        raise ConfigError(f"Invalid --out: {text} (cannot use it: {exc.strerror})") from None
    if is_file:
        raise ConfigError(f"Invalid --out: {text} is a file (allowed: a folder, new or existing)")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".ravine-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise ConfigError(f"Invalid --out: {text} (cannot write there: {why})") from None
    import shutil

    free = shutil.disk_usage(path).free
    if free < MIN_FREE_BYTES:
        raise ConfigError(f"Invalid --out: {text} (only {free / 2**20:.1f} MB free on its disk; "
                          f"allowed: at least {MIN_FREE_BYTES // 2**20} MB)")


def lock_out(path: Path, command: str) -> None:
    """Take ``path/.ravine.lock`` for this process, or refuse when another command holds it.

    ``flock`` locks die with their process, so a killed command never leaves a stale lock.
    """
    import fcntl

    try:
        fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        new = True
    except FileExistsError:
        fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o666)
        new = False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise ConfigError(f"Invalid --out: {path} is in use by {holder} (allowed: a folder no other ravine "
                          "command is writing to; wait for it or choose another --out)") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"`ravine {command}` (pid {os.getpid()})".encode())
    _held_locks.append(fd)
    if new:
        _created_paths.insert(0, path / LOCK_NAME)


def release_locks() -> None:
    """Release every lock taken by :func:`lock_out` in this process (what it created is then kept)."""
    _created_paths.clear()  # without the lock, removing the folder could pull it from under another command
    while _held_locks:
        fd = _held_locks.pop()
        try:
            os.close(fd)  # closing the descriptor drops its flock
        except OSError:
            pass


def out_dir(out: Path | None, command: str) -> Path:
    """The command's output folder: checked, created, locked, cleared of stale temp files.

    The folders this creates are remembered: if the command then fails, :func:`guard`
    removes those that still hold nothing but the lock (a folder that existed before is
    never removed).
    """
    from ravine.utils import remove_stale_temp_files

    path = out if out is not None else default_out(command)
    try:
        _created_paths[:0] = [p for p in (path, *path.parents) if not os.path.lexists(p)]
    except (OSError, ValueError):  # a path the checks below refuse with a clear line
        pass
    try:
        check_out(path)
        lock_out(path, command)
    except BaseException:
        discard_created()
        release_locks()
        raise
    remove_stale_temp_files(path)
    return path


def discard_created() -> None:
    """Remove what :func:`out_dir` created (lock file, folders) while it holds nothing else, deepest first.

    The lock file goes while the lock is still held, so a second command that opened it
    meanwhile was refused, and one that starts later makes a new file (and the folder stays).
    """
    while _created_paths:
        path = _created_paths.pop(0)
        try:
            if path.name == LOCK_NAME:
                if _held_locks:
                    path.unlink()
            else:
                path.rmdir()
        except OSError:  # not empty (results, another command's files) or gone: keep it and its parents
            _created_paths.clear()


def plain_line(text: str) -> None:
    """Print ``text`` as one logical line: no Rich markup (a path may hold ``[``), no highlighting,
    and no wrapping, so a path the user copies from the terminal stays whole."""
    console.print(text, soft_wrap=True, markup=False, highlight=False)


def guard(debug: bool, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn``; on a ``RavineError`` print one line and exit 2 (1 for divergence); any other
    exception is one ``internal error`` line and exit 1 (``--debug`` shows its traceback).

    Ctrl-C exits with 130 after saying so; ``fn`` may raise :class:`Interrupted` to say
    more (e.g. how to resume). The ``--out`` lock is released in every case; when ``fn``
    fails, the ``--out`` folder it created is removed again if it holds nothing else.
    """
    finished = False
    try:
        value = fn(*args, **kwargs)
        finished = True
        return value
    except RavineError as exc:
        if debug:
            traceback.print_exc()
        error_line(str(exc))
        raise typer.Exit(1 if isinstance(exc, DivergenceError) else 2) from None
    except KeyboardInterrupt as exc:
        error_line(str(exc) if isinstance(exc, Interrupted) else "interrupted")
        raise typer.Exit(130) from None
    except Exception as exc:  # a fault ravine did not foresee (a library's error, out of memory): one line, exit 1
        if debug or type(exc).__module__.split(".")[0] in ("typer", "click"):  # Exit, usage errors: the CLI's own
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        error_line(f"internal error: {type(exc).__name__}: {first[:300]} (not a problem with your input as far as "
                   "ravine can tell; rerun with --debug for the traceback, and please report it)")
        raise typer.Exit(1) from None
    finally:
        if finished:
            _created_paths.clear()
        else:
            discard_created()
        release_locks()


class Interrupted(KeyboardInterrupt):
    """A Ctrl-C whose message says what was kept and how to continue."""


def print_table(title: str, columns: list[tuple[str, str]], rows: list[list[str]],
                notes: list[str] | tuple[str, ...] = ()) -> None:
    """Print a results table that never cuts a number, whatever the console width.

    ``columns`` are ``(header, kind)`` with kind ``"num"`` (right-aligned, never
    wrapped or shortened), ``"name"`` (never wrapped) or ``"text"`` (wraps on words).
    Headers wrap on their spaces. When the numbers alone are wider than the console
    (piped output is 80 columns), the text columns move under the table, one line per
    row; when even that is too wide, each row becomes a block of ``header: value`` lines.
    ``notes`` (what columns mean) follow as plain lines.
    """
    from rich import box
    from rich.table import Table

    def fixed_width(j: int) -> int:  # every cell whole; the header wraps between its words
        return max([len(row[j]) for row in rows] + [len(word) for word in columns[j][0].split()])

    def build(keep: list[int]) -> tuple[Table, int]:
        table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", show_edge=False, pad_edge=False)
        needed = -2 + len(keep) - 1  # no outer padding; one separator between columns
        for j in keep:
            head, kind = columns[j]
            if kind == "text":
                table.add_column(head, justify="left", overflow="fold", min_width=MIN_TEXT_WIDTH)
                needed += MIN_TEXT_WIDTH + 2
            else:
                # a fixed width that fits the longest cell: Rich never has to shrink (cut) this column
                table.add_column(head, justify="right" if kind == "num" else "left", width=fixed_width(j))
                needed += fixed_width(j) + 2
        for row in rows:
            table.add_row(*(escape(row[j]) for j in keep))
        return table, needed

    everything = list(range(len(columns)))
    numbers = [j for j, (_, kind) in enumerate(columns) if kind != "text"]
    texts = [j for j, (_, kind) in enumerate(columns) if kind == "text"]
    for keep in (everything, numbers):
        table, needed = build(keep)
        if needed <= console.width:
            console.print(table)
            if keep is numbers and texts:
                for row in rows:
                    console.print(f"{escape(row[0])} · " + "; ".join(f"{columns[j][0]}: {escape(row[j])}" for j in texts),
                                  highlight=False)
            break
    else:  # one block per row: every value on its own line
        console.print(title, highlight=False)
        for row in rows:
            console.print(escape(row[0]), style="bold", highlight=False)
            for j in everything[1:]:
                console.print(f"  {escape(columns[j][0])}: {escape(row[j])}", highlight=False)
    for note in notes:
        console.print(escape(note), highlight=False)


def parse_batch_size(text: str) -> int | str | None:
    """``--batch-size``: a positive integer, ``full`` (None: the whole training split) or ``auto``.

    Example:
        >>> parse_batch_size("32"), parse_batch_size("full"), parse_batch_size("auto")
        (32, None, 'auto')
    """
    if text in ("auto", "full"):
        return None if text == "full" else "auto"
    from ravine.train.config import check_run_settings

    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"Invalid --batch-size: {text!r} (allowed: a positive integer, 'full' or 'auto')") from None
    check_run_settings(batch_size=value, names={"batch_size": "--batch-size"})  # the range train uses too
    return value


def problem_for(problem: str | None, data: Path | None) -> str:
    """``--problem``, or the one ``--data`` implies (npz for an ``.npz`` file, else csv); digits-mlp without both.

    Example:
        >>> problem_for(None, Path("tiny.csv")), problem_for(None, None), problem_for("iris", None)
        ('csv', 'digits-mlp', 'iris')
    """
    if problem is not None:
        return problem
    if data is None:
        return "digits-mlp"
    return "npz" if data.suffix.lower() == ".npz" else "csv"


#: the data options a problem may take, by their command-line flag
DATA_FLAGS = {"data": "--data", "target": "--target-column", "data_dir": "--data-dir", "standardize": "--standardize"}


def problem_options(recipe: Any, **given: Any) -> dict[str, Any]:
    """The problem options given on the command line (None = not given), each checked against the problem.

    Example:
        >>> from ravine import problems
        >>> problem_options(problems.get("csv"), data=Path("my.csv"), target="y", data_dir=None)
        {'data': 'my.csv', 'target': 'y'}
    """
    options: dict[str, Any] = {}
    for key, value in given.items():
        if value is None:
            continue
        if key not in recipe.options:
            allowed = ", ".join(DATA_FLAGS[k] for k in sorted(recipe.options) if k in DATA_FLAGS) or "none"
            raise ConfigError(f"Invalid option {DATA_FLAGS[key]} for problem {recipe.name!r} "
                              f"(allowed for it: {allowed})")
        options[key] = str(value) if isinstance(value, Path) else value
    return options
