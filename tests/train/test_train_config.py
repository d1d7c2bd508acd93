"""Config validation and the ``ravine train`` command."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ravine.cli import app
from ravine.errors import ConfigError
from ravine.train.config import TrainConfig, load_config

runner = CliRunner()


@pytest.mark.parametrize(("raw", "field", "allowed"), [
    ({"lrr": 0.1}, "'lrr'", "did you mean 'lr'? allowed: batch_size, device,"),
    ({"lr": -1}, "lr", "0 < lr"),
    ({"lr": "fast"}, "lr", "0 < lr"),
    ({"epochs": 0}, "epochs", "integer in [1, 100000]"),
    ({"epochs": 2.5}, "epochs", "integer in [1, 100000]"),
    ({"epochs": 100_001}, "epochs", "integer in [1, 100000]"),
    ({"batch_size": "half"}, "batch_size", "'full', 'auto'"),
    ({"batch_size": 0}, "batch_size", "integer in [1, "),
    ({"ema": 1.0}, "ema", "0 <= ema < 1"),
    ({"dtype": "float16"}, "dtype", "float32, float64"),
    ({"seed": -3}, "seed", "integer in [0, 4294967295]"),
    ({"seed": 2**32}, "seed", "integer in [0, 4294967295]"),
    ({"nproc": 0}, "nproc", "at most one process per CPU core"),
    ({"nproc": 10_000}, "nproc", "at most one process per CPU core"),
    ({"lr": 0.1, "hyper": {"lr": 0.2}}, "lr", "set lr once"),
    ({"eval_every": -1}, "eval_every", "integer >= 0"),
    ({"optimizer": "adamw2"}, "optimizer", "allowed: "),
    ({"problem": "mnist-cnn-9000"}, "problem", "allowed: "),
    ({"optimizer": "sgd", "hyper": {"momentun": 0.9}}, "hyper", "'momentun'"),
    ({"optimizer": "momentum", "hyper": {"momentum": 1.5}}, "momentum", "momentum"),
    ({"schedule": {"name": "cosine"}}, "schedule", "allowed: "),
    ({"schedule": {"name": "step", "every": 0}}, "every", "every"),
    ({"schedule": {"every": 3}}, "schedule", "name"),
    ({"hyper": 3}, "hyper", "a table"),
    ({"optimizer": "newton", "nproc": 2}, "nproc", "allowed with nproc > 1"),
])
def test_bad_values_name_the_field_and_what_is_allowed(raw, field, allowed):
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict(raw)
    message = str(info.value)
    assert field in message and allowed in message
    assert "\n" not in message


def test_optimizer_table_and_defaults(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('problem = "digits-mlp"\n[optimizer]\nname = "momentum"\nlr = 0.05\nmomentum = 0.8\n'
                    '[schedule]\nname = "step"\nevery = 2\n')
    cfg = load_config(path, seed=4)
    assert (cfg.optimizer, cfg.lr, cfg.hyper, cfg.seed) == ("momentum", 0.05, {"momentum": 0.8}, 4)
    assert cfg.schedule == [{"name": "step", "every": 2}]
    kwargs = cfg.fit_kwargs()
    assert kwargs["batch_size"] == "auto" and kwargs["epochs"] is None and kwargs["eval_every"] is None


def test_unreadable_config_files(tmp_path):
    with pytest.raises(ConfigError, match="no file"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("lr = = 3\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def _config(tmp_path, text):
    path = tmp_path / "run.toml"
    path.write_text('problem = "digits-mlp"\nbatch_size = 128\n' + text)
    return path


def test_cli_trains_writes_files_and_resumes(tmp_path, monkeypatch):
    import ravine.commands.train as command

    monkeypatch.setattr(command, "_write_report", lambda *args: None)  # drawn in test_cli_divergence_exits_1
    out = tmp_path / "run"
    cfg = _config(tmp_path, 'optimizer = "adam"\nlr = 0.01\nepochs = 1\n')
    result = runner.invoke(app, ["train", str(cfg), "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    for name in ("checkpoint.pt", "iterations.csv", "epochs.csv", "metrics.jsonl", "history.json", "config.json"):
        assert (out / name).is_file(), name
    first = json.loads((out / "history.json").read_text())
    assert first["epoch"]["epoch"] == [0, 1] and first["status"] == "ok"
    cfg = _config(tmp_path, 'optimizer = "adam"\nlr = 0.01\nepochs = 2\n')
    result = runner.invoke(app, ["train", str(cfg), "--out", str(out), "--device", "cpu", "--resume"])
    assert result.exit_code == 0, result.output
    second = json.loads((out / "history.json").read_text())
    assert second["epoch"]["epoch"] == [0, 1, 2]
    assert second["iteration"]["loss"][:len(first["iteration"]["loss"])] == first["iteration"]["loss"]


def test_cli_bad_input_exits_2(tmp_path):
    cfg = _config(tmp_path, "lrr = 0.1\n")
    result = runner.invoke(app, ["train", str(cfg), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "Invalid config key: 'lrr' (did you mean 'lr'? allowed:" in result.output and "Traceback" not in result.output
    cfg = _config(tmp_path, "epochs = 1\n")
    result = runner.invoke(app, ["train", str(cfg), "--resume"])
    assert result.exit_code == 2 and "--out" in result.output
    result = runner.invoke(app, ["train", str(cfg), "--out", str(tmp_path / "empty"), "--resume"])
    assert result.exit_code == 2 and "no checkpoint" in result.output


def test_cli_divergence_exits_1(tmp_path):
    cfg = _config(tmp_path, 'optimizer = "sgd"\nlr = 1e9\nepochs = 2\n')
    out = tmp_path / "div"
    result = runner.invoke(app, ["train", str(cfg), "--out", str(out)])
    assert result.exit_code == 1
    assert "diverged at epoch 1, iteration" in result.output
    assert json.loads((out / "history.json").read_text())["status"] == "diverged"
    assert (out / "report.html").is_file()
