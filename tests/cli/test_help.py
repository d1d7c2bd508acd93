"""Every ``--help`` page at 80 and 120 columns: nothing wider than the screen, no word broken, no double wrap.

The pages are read like a person reads them: each option's help and each paragraph of the
command's description must appear with all its words whole (a word split over two lines,
or cut with an ellipsis, fails), and consecutive lines of one paragraph must be filled
greedily (a line that could have taken the next line's first word means the text was
wrapped twice: once by the docstring's own line breaks, once by the console).
"""

from __future__ import annotations

import re

import pytest
from cli_helpers import _ANSI, run_cli, run_inproc
from rich.text import Text

BORDER = "│"


def _commands() -> list[list[str]]:
    """Every command path of the app, the app itself first (``[]``), from the Typer app itself."""
    import typer

    from ravine.cli import build_app

    root = typer.main.get_command(build_app())
    return [[], *([name] for name in root.commands)]


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in _ANSI.sub("", text).replace("\r", "").splitlines()]


def _words(text: str) -> list[str]:
    return Text.from_markup(text).plain.split() if "[/" in text else text.split()


def _pieces(line: str, width: int) -> tuple[int, str, int]:
    """(column where the text starts, the text, the last column text may use) of one line."""
    if line.startswith(BORDER) or line.startswith("╭") or line.startswith("╰"):
        inner = line[1:-1] if line.endswith(BORDER) else line[1:]
        body = inner.rstrip()
        start = len(body) - len(body.lstrip()) + 1
        return start, body.strip(), width - 2
    body = line.rstrip()
    return len(body) - len(body.lstrip()), body.strip(), width - 1


def check_help_page(text: str, width: int, command: list[str]) -> None:
    """The assertions of this module on one rendered page."""
    from typer._click import Context

    import typer

    from ravine.cli import build_app

    lines = _lines(text)
    assert "Traceback" not in text, text
    too_wide = [line for line in lines if len(line) > width]
    assert not too_wide, f"{command}: lines over {width} columns:\n" + "\n".join(too_wide)
    assert "…" not in text, text  # nothing cut short
    flat = " ".join(_pieces(line, width)[1] for line in lines if line.strip())
    flat = flat.replace(BORDER, " ")
    tokens = set(flat.split())
    root = typer.main.get_command(build_app())
    cmd = root.commands[command[0]] if command else root
    ctx = Context(cmd, info_name=command[0] if command else "ravine")
    texts = [cmd.help or ""] + [getattr(p, "help", None) or "" for p in cmd.get_params(ctx)]
    for text_ in texts:
        for word in _words(" ".join(text_.split())):
            word = word.replace("\\[", "[")
            assert word in tokens or len(word) > width - 8, (command, width, word, text)
    # greedy filling: a continuation line's first word did not fit at the end of the line above
    for above, below in zip(lines, lines[1:]):
        start_a, text_a, limit = _pieces(above, width)
        start_b, text_b, _ = _pieces(below, width)
        if not text_a or not text_b or start_a > start_b or text_b.startswith(("[", "-", "╰", "╭")):
            continue
        if above.startswith(BORDER) != below.startswith(BORDER) or start_b == 2:
            continue  # another block, or a new option row
        if start_a != start_b and not (above[start_b - 2:start_b] == "  " and above[start_b] != " "):
            continue  # the line above has no help text in this column (an option on a line of its own)
        end_a = start_a + len(text_a)
        first = text_b.split()[0]
        assert end_a + 1 + len(first) > limit, f"{command} at {width}: wrapped twice:\n{above}\n{below}"


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize("command", _commands(), ids=lambda c: " ".join(c) or "ravine")
def test_every_help_page_reads_cleanly(monkeypatch, command, width):
    monkeypatch.setenv("COLUMNS", str(width))
    run = run_inproc([*command, "--help"])
    assert run.returncode == 0, run.describe()
    check_help_page(run.stdout, width, command)


def test_help_stacks_options_on_a_narrow_screen(monkeypatch):
    monkeypatch.setenv("COLUMNS", "44")
    run = run_inproc(["compare", "--help"])
    assert run.returncode == 0
    lines = _lines(run.stdout)
    assert all(len(line) <= 44 for line in lines), run.stdout
    at = next(i for i, line in enumerate(lines) if "--standardize / --no-standardize" in line)
    assert re.match(r"│\s{5}Standardize inputs", lines[at + 1]), run.stdout  # its help goes under it


def test_bench_nist_help_is_the_bench_page(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    run = run_inproc(["bench", "nist", "--help"])
    assert run.returncode == 0 and "scipy-lm-fd" in run.stdout
    check_help_page(run.stdout, 80, ["bench"])


@pytest.mark.parametrize("mode", ["pty", pytest.param("pipe", marks=pytest.mark.slow)])
@pytest.mark.parametrize("command", [[], ["compare"]], ids=["ravine", "compare"])
def test_help_at_80_columns_in_a_real_process(command, mode):
    run = run_cli([*command, "--help"], mode)
    assert run.returncode == 0, run.describe()
    check_help_page(run.text, 80, command)


@pytest.mark.slow
@pytest.mark.parametrize("command", _commands()[2:], ids=lambda c: " ".join(c))
def test_every_help_page_under_a_terminal(command):
    run = run_cli([*command, "--help"], "pty")
    assert run.returncode == 0, run.describe()
    check_help_page(run.text, 80, command)
