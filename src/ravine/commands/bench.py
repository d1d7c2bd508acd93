"""`ravine bench` (being written)."""

from __future__ import annotations

from ravine.commands.common import DebugOpt, guard


def bench(debug: DebugOpt = False) -> None:
    """Not written yet."""
    guard(debug, lambda: None)
