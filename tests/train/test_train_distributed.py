"""Data-parallel training: 2 CPU processes (gloo) give the parameters of 1 process with the same global batch."""

from __future__ import annotations

import pytest
import torch
from train_helpers import classification

from ravine.train import distributed as ddp
from ravine.train import fit, load_checkpoint


def _train(out_dir: str) -> None:
    # Module level: the spawned processes import it by name.
    inst = classification(n=90)  # no dropout / batch norm: those legitimately differ per rank
    seen = []
    base = inst.loss_fn

    def loss_fn(out, y):
        if torch.is_grad_enabled():
            seen.append(len(y))
        return base(out, y)

    inst.loss_fn = loss_fn
    fit(inst, torch.optim.SGD(inst.model.parameters(), lr=0.2, momentum=0.9), epochs=3, batch_size=25,
        seed=5, out_dir=out_dir, tensorboard=False)
    rank, _ = ddp.world()
    with open(f"{out_dir}-seen{rank}", "w") as fh:
        fh.write(str(sum(seen)))


def test_shard_splits_a_batch_into_contiguous_near_equal_parts():
    idx = torch.arange(7)
    parts = [ddp.shard(idx, r, 3) for r in range(3)]
    assert torch.equal(torch.cat(parts), idx)
    assert sorted(len(p) for p in parts) == [2, 2, 3]


@pytest.mark.slow
def test_two_processes_match_one(tmp_path):
    _train(str(tmp_path / "one"))
    ddp.launch(2, _train, str(tmp_path / "two"))
    one = load_checkpoint(tmp_path / "one" / "checkpoint.pt")
    two = load_checkpoint(tmp_path / "two" / "checkpoint.pt")
    assert two["config"]["world_size"] == 2 and one["config"]["world_size"] == 1
    # 90 samples, batch 25: the last batch of 15 splits 7 / 8, so the loss rescaling is exercised.
    for name, value in one["model"].items():
        torch.testing.assert_close(two["model"][name], value, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(torch.tensor(two["history"]["iteration"]["loss"]),
                               torch.tensor(one["history"]["iteration"]["loss"]), rtol=1e-5, atol=1e-6)
    # Each rank trained on its half of every global batch only.
    seen = [int((tmp_path / f"two-seen{r}").read_text()) for r in range(2)]
    # Batches of 25, 25, 25, 15 split 12 | 13 and 7 | 8, for 3 epochs.
    assert seen == [3 * (3 * 12 + 7), 3 * (3 * 13 + 8)]
    assert int((tmp_path / "one-seen0").read_text()) == 3 * 90


@pytest.mark.slow
def test_train_from_config_on_two_processes(tmp_path):
    from ravine.train.config import TrainConfig, train_from_config

    config = TrainConfig.from_dict({"problem": "breast-cancer-logreg", "optimizer": "sgd", "lr": 0.1, "epochs": 2,
                                    "batch_size": 50, "nproc": 2, "device": "cpu"})
    history = train_from_config(config, tmp_path)
    assert history["status"] == "ok" and history["epoch"]["epoch"] == [0, 1, 2]
    assert load_checkpoint(tmp_path / "checkpoint.pt")["config"]["world_size"] == 2
    assert (tmp_path / "epochs.csv").is_file() and (tmp_path / "config.json").is_file()


@pytest.mark.slow
def test_divergence_on_two_processes_reaches_the_parent(tmp_path):
    from ravine.errors import DivergenceError
    from ravine.train.config import TrainConfig, train_from_config

    config = TrainConfig.from_dict({"problem": "breast-cancer-logreg", "optimizer": "sgd", "lr": 1e9, "epochs": 2,
                                    "batch_size": 50, "nproc": 2, "device": "cpu"})
    with pytest.raises(DivergenceError, match=r"diverged at epoch 1, iteration \d+"):
        train_from_config(config, tmp_path)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["epoch"] == 0  # the last good state: before training
