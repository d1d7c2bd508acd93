"""Several workers share one Optuna study: a journal file, and a real PostgreSQL server (marked ``postgres``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from ravine import tune
from ravine.tune import study as st

LRS = "lr=0.001,0.003,0.01,0.03,0.1,0.3,1.0,3.0"
CONFIGS = [{"lr": v} for v in (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)]


def _worker(out: Path, storage: str, study: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "ravine", "tune", "--problem", "breast-cancer-logreg", "--optimizer", "sgd",
           "--method", "grid", "--space", LRS, "--epochs", "2", "--batch", "2", "--storage", storage,
           "--study", study, "--no-rerun", "--out", str(out)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _check_two_workers_share(tmp_path: Path, storage: str, study: str) -> list[dict]:
    procs = [_worker(tmp_path / f"w{k}", storage, study) for k in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    records = st.study_records(st.open_study(storage, study, higher_is_better=True)[0])
    done = [r for r in records if r["status"] == "ok"]
    # every configuration evaluated exactly once: none lost, none twice
    assert sorted(r["config"]["lr"] for r in done) == sorted(c["lr"] for c in CONFIGS)
    assert sorted(r["number"] for r in done) == list(range(len(CONFIGS)))
    final = json.loads((tmp_path / "w0" / "tune.json").read_text())["trials"]
    final1 = json.loads((tmp_path / "w1" / "tune.json").read_text())["trials"]
    assert len(final) == len(CONFIGS) or len(final1) == len(CONFIGS)  # the last one to finish sees all
    return done


def _best(records: list[dict]) -> tuple[float, float]:
    r = max(records, key=lambda r: (r["score"], -r["number"]))
    return r["config"]["lr"], r["score"]


@pytest.mark.slow
def test_two_workers_on_one_journal_file_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    journal = str(tmp_path / "shared.journal")
    _check_two_workers_share(tmp_path, journal, "shared")


def _postgres_url() -> str:
    url = os.environ.get("RAVINE_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("RAVINE_TEST_POSTGRES_URL is not set under CI (.ci/run starts PostgreSQL and sets it)")
        pytest.skip("RAVINE_TEST_POSTGRES_URL not set (outside CI); .ci/run starts a server and sets it")
    return url


@pytest.mark.postgres
@pytest.mark.slow
def test_two_workers_share_a_postgresql_study_and_agree_with_one_worker(tmp_path: Path) -> None:
    url = _postgres_url()
    name = f"ravine-test-{uuid.uuid4().hex[:8]}"
    shared = _check_two_workers_share(tmp_path, url, name)
    # one worker over the same fixed list, in its own study
    ctx = tune.prepare("breast-cancer-logreg", "sgd", epochs=2)
    single_study, created = st.open_study(url, name + "-single", higher_is_better=True)
    st.enqueue_once(single_study, created, CONFIGS)
    st.run_queue(ctx, single_study, batch=2)
    single = [r for r in st.study_records(single_study) if r["status"] == "ok"]
    assert len(single) == len(CONFIGS)
    assert _best(shared)[0] == _best(single)[0]
    assert _best(shared)[1] == pytest.approx(_best(single)[1], abs=1e-6)


@pytest.mark.slow
def test_workers_option_starts_local_workers_on_one_journal(tmp_path: Path) -> None:
    out = tmp_path / "main"
    cmd = [sys.executable, "-m", "ravine", "tune", "--problem", "breast-cancer-logreg", "--optimizer", "sgd",
           "--method", "grid", "--space", LRS, "--epochs", "1", "--batch", "2", "--workers", "2", "--seeds", "2",
           "--out", str(out)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    trials = json.loads((out / "tune.json").read_text())["trials"]
    assert sorted(t["config"]["lr"] for t in trials if t["status"] == "ok") == sorted(c["lr"] for c in CONFIGS)
    assert (out / "study.journal").exists() and (out / "worker-1" / "tune.json").exists()
