"""``ravine problems`` at 80 columns (piped): every word whole, nothing wider than the console."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from ravine.cli import app
from ravine.commands import common
from ravine.problems import describe


@pytest.mark.parametrize("width", [80, 60, 200])
def test_problems_keeps_every_word_whole_at_any_width(monkeypatch, width) -> None:
    # at 80 columns the bordered table once folded 'cross-entropy' into 'cross-en' / 'tropy'
    monkeypatch.setattr(common.console, "width", width)
    result = CliRunner().invoke(app, ["problems"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= width
    words = set(result.output.split())
    for row in describe():
        for col in ("name", "data", "model", "loss", "metric", "defaults"):
            for word in str(row.get(col, "")).split():
                assert word in words, (col, word)
