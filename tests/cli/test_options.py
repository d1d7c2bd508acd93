"""Option parsing of the command-line shells: --lr, --schedule-arg, --help's flags, the shared ranges."""

from __future__ import annotations

import json

import pytest
from cli_helpers import run_inproc

from ravine.commands.compare import parse_kv, parse_lr
from ravine.errors import ConfigError


@pytest.mark.parametrize(("text", "expected"), [
    ("0.1", {"*": 0.1}), ("sgd=0.1,adam=1e-3", {"sgd": 0.1, "adam": 1e-3}), ("0.5,adam=0.01", {"*": 0.5, "adam": 0.01}),
    (" sgd = 0.2 ", {"sgd": 0.2}),
])
def test_parse_lr_accepts(text, expected):
    assert parse_lr(text) == expected


@pytest.mark.parametrize("text", ["0.1,0.2", "sgd=0.1,sgd=0.2", "=0.1", "sgd=1e-400", "sgd=", "", "0", "-1",
                                  "inf", "nan", "sgd=fast", ",", "sgd=0.1,"])
def test_parse_lr_refuses(text):
    with pytest.raises(ConfigError, match="Invalid --lr"):
        parse_lr(text)


def test_parse_kv_lists():
    assert parse_kv(["boundaries=5"], "--schedule-arg", ["boundaries"]) == {"boundaries": [5]}
    assert parse_kv(["boundaries=[5]"], "--schedule-arg") == {"boundaries": [5]}
    assert parse_kv(["values=1,0.1", "every=3"], "--schedule-arg") == {"values": [1, 0.1], "every": 3}
    with pytest.raises(ConfigError, match="twice"):
        parse_kv(["every=3", "every=4"], "--schedule-arg")


def test_piecewise_schedule_with_one_boundary_from_the_command_line(tmp_path):
    run = run_inproc(["compare", "--problem", "breast-cancer-logreg", "--optimizers", "sgd", "--epochs", "3",
                      "--lr", "0.1", "--schedule", "piecewise", "--schedule-arg", "boundaries=2",
                      "--schedule-arg", "values=1,0.1", "--out", str(tmp_path)])
    assert run.returncode == 0, run.stderr
    lr = json.loads((tmp_path / "results.json").read_text())["runs"]["sgd"]["history"]["epoch"]["lr"]
    # ε_t = ε0 · values[i], i = #{boundaries <= t}: 0.1 for epochs 0 and 1, 0.01 from epoch 2 on
    assert lr[-1] == pytest.approx(0.01) and lr[0] == pytest.approx(0.1)


def test_compare_and_train_share_one_range_check(tmp_path):
    # the same bad values, refused by both commands with the same allowed range
    cfg = tmp_path / "c.toml"
    for key, value, flag in (("epochs", "0", "--epochs"), ("epochs", "100001", "--epochs"),
                             ("batch_size", "0", "--batch-size")):
        cfg.write_text(f'problem = "breast-cancer-logreg"\noptimizer = "sgd"\n{key} = {value}\n')
        by_train = run_inproc(["train", str(cfg), "--out", str(tmp_path / "t")])
        by_compare = run_inproc(["compare", "--problem", "breast-cancer-logreg", "--optimizers", "sgd", flag, value,
                                 "--out", str(tmp_path / "c")])
        assert by_train.returncode == by_compare.returncode == 2
        allowed = by_train.stderr.split("allowed:")[1].strip()
        assert allowed in by_compare.stderr, (by_train.stderr, by_compare.stderr)


def test_help_shows_flags_without_a_value():
    for args in (["--help"], ["compare", "--help"], ["train", "--help"], ["optimizers", "--help"]):
        run = run_inproc(args)
        assert run.returncode == 0
        assert "<bool>" not in run.stdout, run.stdout
    assert "--overwrite" in run_inproc(["train", "--help"]).stdout


def test_listings_take_only_debug():
    for command in ("optimizers", "problems", "schedules"):
        run = run_inproc([command, "--seed", "1"])
        assert run.returncode == 2 and "No such option" in run.stderr
