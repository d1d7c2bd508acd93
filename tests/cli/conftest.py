"""Fixtures of the command-line tests; the helpers themselves live in ``cli_helpers.py``.

Use ``from cli_helpers import run_cli`` (``run_cli(args, mode="pty" | "pipe" | "dumb")``) or the
``cli`` fixture below.
"""

from __future__ import annotations

import pytest
from cli_helpers import run_cli


@pytest.fixture
def cli():
    """``run_cli(args, mode="pty" | "pipe" | "dumb")``: run ``python -m ravine`` in a fresh process."""
    return run_cli
