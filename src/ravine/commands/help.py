"""``--help`` pages that read cleanly at any width, piped or in a terminal.

Typer's Rich help was considered and is kept for its look (panels, colours), but not its
layout: it keeps the docstrings' own line breaks and then wraps again at the console width
(lines of two words between full ones), and its six-column option table squeezes the help
text into a third of an 80-column screen, folding ``[0<=x<=4294967295]`` mid-token and
cutting long words with an ellipsis. Click's plain formatter wraps well but drops Rich.
This renderer keeps Typer's look on a two-column layout: the option (with its value type)
on the left, its help on the right, wrapped only between words; an option too long for the
left column gets a line of its own, and on a narrow screen every help goes under its option.
"""

from __future__ import annotations

import inspect
import io
import re
from typing import Any

from rich.console import Console, Group
from rich.errors import MarkupError
from rich.padding import Padding
from rich.panel import Panel
from rich.text import Text

#: the widest the left column (option and value type) may be, as a share of the panel
LEFT_SHARE = 0.4
#: below this many columns for the help text, each help goes under its option instead
MIN_HELP_WIDTH = 28


def paragraphs(text: str | None) -> list[str]:
    """A docstring's paragraphs, each on one line (a paragraph starting with ``\\b`` keeps its breaks).

    Example:
        >>> paragraphs("First line\\n    goes on.\\n\\n    Second.")
        ['First line goes on.', 'Second.']
    """
    body = inspect.cleandoc(text or "").partition("\f")[0]
    out = []
    for block in re.split(r"\n\s*\n", body):
        if block.startswith("\b"):
            out.append(block.strip("\b\n"))
        elif block.strip():
            out.append(" ".join(line.strip() for line in block.splitlines()))
    return out


def _markup(text: str, style: str = "") -> Text:
    """Rich markup (``[bold]x[/]``) when the text holds some, else the text as it is."""
    try:
        return Text.from_markup(text, style=style)
    except MarkupError:  # a JSON schema's brackets that merely look like a tag
        return Text(text, style=style)


def _left(record: str) -> Text:
    """``--seed <int range>`` / ``--a / --no-a`` / ``config <path>``: names in cyan, value types in yellow."""
    text = Text()
    for i, token in enumerate(record.split(" ")):
        if i:
            text.append(" ")
        name = i == 0 or token.startswith("-")
        text.append(token, style="bold cyan" if name else "dim" if token == "/" else "yellow")
    return text


def _param_row(param: Any, ctx: Any) -> tuple[Text, Text, Text] | None:
    """(option and value type, help, ``[default: x]``) of one parameter; None when hidden."""
    record = param.get_help_record(ctx)
    if record is None:
        return None
    left, right = record
    # click appends "  [default: x; range]" to the help: plain text, never parsed as markup
    body, sep, extra = right.rpartition("  [") if right.endswith("]") and "  [" in right else (right, "", "")
    if not sep and right.startswith("[") and not getattr(param, "help", None):
        body, extra = "", right[1:]
    return _left(left), _markup(body), Text(f"[{extra}", style="dim") if extra else Text()


def _panel(title: str, rows: list[tuple[Text, Text, Text]], width: int) -> Panel:
    """A titled box of (left, help, extra) rows that never breaks a word (unless one is wider than the box).

    ``extra`` (``[default: x]``) ends the help's last line when it fits there, else starts a line.
    """
    inner = max(width - 4, 20)  # the panel's two borders and one space of padding on each side
    cap = max(12, int(inner * LEFT_SHARE))
    fitting = [left.cell_len for left, _, _ in rows if left.cell_len <= cap]
    left_width = max(fitting, default=0)
    help_width = inner - left_width - 2
    stacked = help_width < MIN_HELP_WIDTH
    if stacked:
        help_width = inner - 4
    lines: list[Text] = []
    measure = Console(width=inner, color_system=None, file=io.StringIO())  # measures, prints nothing
    for left, help_text, extra in rows:
        wrapped = list(help_text.wrap(measure, help_width)) if help_text.plain else []
        if extra.plain and wrapped and wrapped[-1].cell_len + 1 + extra.cell_len <= help_width:
            wrapped[-1] = Text.assemble(wrapped[-1], " ", extra)
        elif extra.plain:
            wrapped.extend(extra.wrap(measure, help_width))
        for piece in (left.wrap(measure, inner) if left.cell_len > inner else [left]):
            lines.append(piece)
        indent = 4 if stacked else left_width + 2
        if not stacked and left.cell_len <= left_width and wrapped:
            lines[-1] = Text.assemble(lines[-1], " " * (indent - lines[-1].cell_len), wrapped.pop(0))
        lines.extend(Text.assemble(" " * indent, line) for line in wrapped)
    body = Text("\n").join(lines)
    body.no_wrap = True
    return Panel(body, title=title, title_align="left", border_style="dim", width=width)


def render(command: Any, ctx: Any) -> None:
    """Print ``command``'s help for ``ctx`` to stdout: usage, description, then its panels."""
    console = Console()
    width = console.width
    usage = " ".join([ctx.command_path, *command.collect_usage_pieces(ctx)])
    parts: list[Any] = [Padding(Text.assemble(("Usage: ", "yellow"), (usage, "bold")), (1, 1))]
    described = paragraphs(command.help)
    for i, paragraph in enumerate(described):
        parts.append(Padding(_markup(paragraph, style="" if i == 0 else "dim"), (0, 1, 1, 1)))
    arguments, options = [], []
    for param in command.get_params(ctx):
        row = _param_row(param, ctx)
        if row is not None:
            (arguments if getattr(param, "param_type_name", "") == "argument" else options).append(row)
    if arguments:
        parts.append(_panel("Arguments", arguments, width))
    if options:
        parts.append(_panel("Options", options, width))
    commands = []
    for name in command.list_commands(ctx) if hasattr(command, "list_commands") else []:
        sub = command.get_command(ctx, name)
        if sub is not None and not sub.hidden:
            commands.append((Text(name, style="bold cyan"), _markup((paragraphs(sub.help) or [""])[0]), Text()))
    if commands:
        parts.append(_panel("Commands", commands, width))
    console.print(Group(*parts))


def install(command: Any) -> None:
    """Render ``command``'s ``--help`` (and its subcommands') with :func:`render`."""
    typers_own = command.format_help

    def format_help(ctx: Any, formatter: Any) -> None:
        try:
            render(command, ctx)
        except Exception:  # noqa: BLE001 - a help page must never end in a traceback; Typer's is second best
            typers_own(ctx, formatter)

    command.format_help = format_help
    for sub in getattr(command, "commands", {}).values():
        install(sub)
