"""Data parallel: with a gloo process group of 2, every second-order and line-search optimizer
takes the same step on every rank, equal to the one-process full-batch step (real
torch.distributed, spawned processes; all optimizers in one launch)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import ravine.optim

WORKER = Path(__file__).with_name("ddp_worker.py")


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp") / "params.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(WORKER), str(out)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return torch.load(out)


def _worker_names() -> list[str]:
    text = WORKER.read_text()
    start = text.index("NAMES = [")
    return eval(text[start + len("NAMES = "):text.index("]", start) + 1])  # noqa: S307 - our own file


@pytest.mark.slow
@pytest.mark.parametrize("name", _worker_names())
def test_ranks_agree_and_equal_the_full_batch_step(results, name):
    ranks, single = results["ranks"], results["single"]
    assert torch.equal(ranks[0][name], ranks[1][name]), f"{name}: ranks took different steps"
    torch.testing.assert_close(ranks[0][name], single[name], rtol=1e-9, atol=1e-11)
    assert not torch.equal(single[name], torch.zeros(3, dtype=torch.float64))  # it moved


def test_every_closure_optimizer_is_covered_by_the_distributed_check():
    covered = set(_worker_names())
    closure_optimizers = {n for n in ravine.optim.names() if ravine.optim.info(n).closure != "none"}
    assert closure_optimizers <= covered


@pytest.mark.slow
def test_sync_batchnorm_on_cpu_matches_one_process_on_the_global_batch(results):
    """``ravine train --nproc N`` converts BatchNorm (train/distributed.convert_sync_batchnorm)."""
    ranks, single = [r["batchnorm"] for r in results["ranks"]], results["single"]["batchnorm"]
    assert ranks[0]["type"] == "CPUSyncBatchNorm"
    for rank in ranks:
        torch.testing.assert_close(rank["running_mean"], single["running_mean"], rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(rank["running_var"], single["running_var"], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(torch.cat([r["out"] for r in ranks]), single["out"], rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(torch.cat([r["x_grad"] for r in ranks]), single["x_grad"], rtol=1e-9, atol=1e-10)
