"""The report: self-contained HTML with every figure, run, resolved setting and diagnosis."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from synthetic import history, results  # noqa: E402

from ravine.report import all_figures, learning_curves, styles, to_png, validation, write_report, zoom  # noqa: E402
from ravine.train.results import RunResult  # noqa: E402
from ravine.train.spec import RunSpec  # noqa: E402


def test_report_is_self_contained_and_complete(tmp_path) -> None:
    res = results()
    path = write_report(tmp_path, res, title="synthetic")
    html = path.read_text()
    assert html.startswith("<!DOCTYPE html>")
    # no external resources: every src is inline data, no links out
    srcs = re.findall(r'src="([^"]*)"', html)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "http://" not in html and "https://" not in html
    for name, run in res.runs.items():
        assert name in html
        assert run.diagnosis.kind in html
        assert run.diagnosis.explanation in html
    assert "momentum=0.9" in html and "32 / 640" in html  # the resolved settings are shown
    for stem in ("train_loss", "learning_curves", "validation", "learning_rate", "time_to_target",
                 "effective_step"):
        assert f'id="{stem}"' in html
        assert (tmp_path / "figures" / f"{stem}.png").read_bytes()[:4] == b"\x89PNG"
    assert "Partial" not in html


def test_a_results_json_dict_draws_the_same_report(tmp_path) -> None:
    data = json.loads(json.dumps(results().to_json(), default=str).replace("Infinity", "null"))
    assert write_report(tmp_path, data).read_text().count("<figure") == 6


def test_a_partial_result_says_what_is_missing(tmp_path) -> None:
    res = results()
    res.missing = ["rmsprop"]
    html = write_report(tmp_path, res).read_text()
    assert "Partial" in html and "rmsprop" in html and "--resume" in html


def test_figures_survive_diverged_and_empty_runs() -> None:
    res = results()
    empty = history(0.1)
    empty.iterations = type(empty.iterations)()
    empty.epochs = type(empty.epochs)()
    empty.status = "diverged"
    res.runs["empty"] = RunResult("empty", RunSpec("x", "sgd", 0.1, 1, 1, 1), empty)
    for fig in all_figures(res).values():
        assert to_png(fig)[:4] == b"\x89PNG"


def test_learning_curves_put_train_and_validation_on_one_axis_per_run() -> None:
    res = results()
    fig = learning_curves(res.runs)
    # two rows (loss, metric) and one column per run
    assert len(fig.axes) == 2 * len(res.runs)
    metric_ax = fig.axes[1]  # first run's metric axis
    labels = [line.get_label() for line in metric_ax.get_lines()]
    assert labels == ["train", "validation"]
    styles_seen = {line.get_linestyle() for line in metric_ax.get_lines()}
    assert len(styles_seen) == 2


def test_metric_axis_is_zoomed_to_the_trained_epochs() -> None:
    res = results()
    fig = validation({"adam": res.runs["adam"]})
    lo, hi = fig.axes[1].get_ylim()
    trained = res.runs["adam"].history.epochs.val_metric[1:]
    assert lo > 0.1  # epoch 0's 0.1 would stretch the axis to the bottom
    assert lo <= min(trained) and hi >= max(trained) and hi <= 1.0


def test_zoom_clips_and_pads() -> None:
    from matplotlib.figure import Figure

    ax = Figure().add_subplot()
    zoom(ax, [0.95, 0.999], (0.0, 1.0))
    lo, hi = ax.get_ylim()
    assert lo < 0.95 and hi == 1.0


def test_runs_differ_in_line_style_not_only_colour() -> None:
    look = styles([f"r{i}" for i in range(6)])
    assert len({str(s["linestyle"]) for s in look.values()}) == 6
    assert len({s["marker"] for s in look.values()}) == 6


def test_a_log_axis_with_nothing_positive_still_renders() -> None:
    from ravine.report import effective_step

    run = RunResult("stuck", RunSpec("x", "sgd", 0.1, 1, 1, 1), history(0.1),
                    extras={"effective_step": {"step": [1, 2], "value": [0.0, 0.0], "epoch_end_step": [2],
                                               "epoch_mean": [0.0]}})
    assert to_png(effective_step({"stuck": run}))[:4] == b"\x89PNG"
