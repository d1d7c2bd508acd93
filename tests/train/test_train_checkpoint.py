"""Checkpoints, bit-identical resume and metric files."""

from __future__ import annotations

import csv
import json
import pickle

import pytest
import torch
from train_helpers import classification

from ravine.errors import CheckpointError
from ravine.train import fit, load_checkpoint, save_checkpoint


def _run(out_dir, epochs, resume=False, lr=0.05):
    inst = classification(dropout=0.3)
    opt = torch.optim.Adam(inst.model.parameters(), lr=lr)
    return fit(inst, opt, epochs=epochs, batch_size=20, seed=7, out_dir=out_dir, resume=resume,
               schedule={"name": "step", "every": 1, "factor": 0.7})


def test_resume_is_bit_identical_with_dropout(tmp_path):
    straight = _run(tmp_path / "straight", 4)
    _run(tmp_path / "split", 2)
    resumed = _run(tmp_path / "split", 4, resume=True)
    for name, value in straight.final_params.items():
        assert torch.equal(resumed.final_params[name], value), name
    a, b = straight.history, resumed.history
    assert a["iteration"]["loss"] == b["iteration"]["loss"]
    assert a["epoch"]["val_loss"] == b["epoch"]["val_loss"] and a["epoch"]["lr"] == b["epoch"]["lr"]
    assert a["test"] == b["test"]
    # The metric files of the resumed run hold the whole run once (rewritten from the checkpoint).
    for name in ("iterations.csv", "epochs.csv"):
        rows_a = list(csv.reader((tmp_path / "straight" / name).read_text().splitlines()))
        rows_b = list(csv.reader((tmp_path / "split" / name).read_text().splitlines()))
        assert len(rows_a) == len(rows_b)
        assert [r[0] for r in rows_a] == [r[0] for r in rows_b]


def test_dropout_makes_a_difference():
    # Guard for the test above: with dropout the seed matters, so bit-identity is not trivial.
    def final(seed):
        inst = classification(dropout=0.3)
        return fit(inst, torch.optim.SGD(inst.model.parameters(), lr=0.1), epochs=1, batch_size=20,
                   seed=seed).final_params

    a, b = final(1), final(2)
    assert not all(torch.equal(a[k], b[k]) for k in a)


def test_resume_with_other_settings_is_refused(tmp_path):
    _run(tmp_path, 1)
    with pytest.raises(CheckpointError, match="lr"):
        _run(tmp_path, 2, resume=True, lr=0.01)


def test_resume_without_checkpoint_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        _run(tmp_path, 2, resume=True)


def test_checkpoint_round_trip_and_marker(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"epoch": 3, "model": {"w": torch.arange(3.0)}, "rng": torch.get_rng_state()})
    state = load_checkpoint(path)
    assert state["format"] == "ravine-checkpoint" and state["epoch"] == 3
    assert torch.equal(state["model"]["w"], torch.arange(3.0))
    assert not list(tmp_path.glob("*.tmp"))  # the temp file was renamed away


class _Foreign:
    pass


@pytest.mark.parametrize("kind", ["garbage", "truncated", "foreign-dict", "pickled-class", "empty"])
def test_corrupt_or_foreign_checkpoint_is_refused(tmp_path, kind):
    path = tmp_path / "checkpoint.pt"
    if kind == "garbage":
        path.write_bytes(b"this is not a checkpoint")
    elif kind == "truncated":
        save_checkpoint(path, {"epoch": 1, "model": {"w": torch.zeros(100)}})
        path.write_bytes(path.read_bytes()[:200])
    elif kind == "foreign-dict":
        torch.save({"state_dict": {"w": torch.zeros(2)}}, path)
    elif kind == "pickled-class":
        path.write_bytes(pickle.dumps(_Foreign(), protocol=2))
    else:
        path.write_bytes(b"")
    with pytest.raises(CheckpointError, match=str(path.name)):
        load_checkpoint(path)


def test_metric_files_match_the_history(tmp_path):
    inst = classification()
    result = fit(inst, torch.optim.SGD(inst.model.parameters(), lr=0.1), epochs=2, batch_size=32, out_dir=tmp_path,
                 eval_every=2)
    h = result.history
    with open(tmp_path / "iterations.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == h["iteration"]["step"]
    assert [float(r["loss"]) for r in rows] == pytest.approx(h["iteration"]["loss"])
    with open(tmp_path / "epochs.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [float(r["val_metric"]) for r in rows] == pytest.approx(h["epoch"]["val_metric"])
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    kinds = [r["kind"] for r in records]
    assert kinds.count("iteration") == 6 and kinds.count("epoch") == 3 and kinds.count("eval") == 3
    assert kinds[-1] == "test" and records[-1]["metric"] == pytest.approx(h["test"]["metric"])
    saved = json.loads((tmp_path / "history.json").read_text())
    assert saved["iteration"]["loss"] == pytest.approx(h["iteration"]["loss"])
    assert load_checkpoint(tmp_path / "checkpoint.pt")["epoch"] == 2


def test_tensorboard_scalars_when_available(tmp_path, monkeypatch):
    import sys
    import types

    scalars = []

    class FakeWriter:  # stands in for torch.utils.tensorboard.SummaryWriter (tensorboard is an optional extra)
        def __init__(self, log_dir):
            self.log_dir = log_dir

        def add_scalar(self, tag, value, step):
            scalars.append((tag, value, step))

        def close(self):
            pass

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=FakeWriter))
    inst = classification()
    result = fit(inst, torch.optim.SGD(inst.model.parameters(), lr=0.1), epochs=1, batch_size=48, out_dir=tmp_path)
    losses = [(v, s) for tag, v, s in scalars if tag == "iteration/loss"]
    assert losses == list(zip(result.history["iteration"]["loss"], result.history["iteration"]["step"], strict=True))
    assert [s for tag, _, s in scalars if tag == "epoch/val_metric"] == [0, 1]
