"""The report: self-contained HTML with every figure, run and diagnosis."""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from synthetic import results  # noqa: E402

from ravine.report import all_figures, to_png, write_report  # noqa: E402


def test_report_is_self_contained_and_complete(tmp_path) -> None:
    res = results()
    path = write_report(tmp_path, res, title="synthetic")
    html = path.read_text()
    assert html.startswith("<!DOCTYPE html>")
    # no external resources: every src is inline data, no links out
    srcs = re.findall(r'src="([^"]*)"', html)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "http://" not in html and "https://" not in html
    for name, run in res["runs"].items():
        assert name in html
        assert run["diagnosis"]["kind"] in html
        assert run["diagnosis"]["explanation"] in html
    for stem in ("train_loss", "validation", "learning_rate", "time_to_target", "effective_step"):
        assert f'id="{stem}"' in html
        assert (tmp_path / "figures" / f"{stem}.png").read_bytes()[:4] == b"\x89PNG"


def test_figures_survive_diverged_and_empty_runs() -> None:
    res = results()
    res["runs"]["empty"] = {"history": {"iteration": {}, "epoch": {}, "status": "diverged"}, "summary": {}}
    for fig in all_figures(res).values():
        assert to_png(fig)[:4] == b"\x89PNG"


def test_a_log_axis_with_nothing_positive_still_renders() -> None:
    from ravine.report import effective_step

    runs = {"stuck": {"effective_step": {"step": [1, 2], "value": [0.0, 0.0], "epoch_end_step": [2],
                                         "epoch_mean": [0.0]}}}
    assert to_png(effective_step(runs))[:4] == b"\x89PNG"
