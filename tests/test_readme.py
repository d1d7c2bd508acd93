"""The README's Python example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README has a Python example"
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)  # noqa: S102 - our own README
    # 100 full-batch steps fit random targets better than their mean does, and the schedule ran.
    assert namespace["loss"].item() < namespace["y"].var().item()
    assert namespace["opt"].param_groups[0]["lr"] < 0.01


def test_readme_has_the_two_setup_commands() -> None:
    text = README.read_text()
    bash = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    assert len(bash) == 2
    for cmd in bash:
        assert "pip install torch==2.13.0" in cmd
    assert "ravine compare" in bash[0]
    assert "pytest" in bash[1]
    ci = (README.parent / ".ci" / "run").read_text()
    # CI runs the README's own test command, word for word
    command = bash[1][bash[1].index("python -m pytest"):].strip()
    assert command in ci.splitlines()
