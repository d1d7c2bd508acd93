"""Faults and concurrency: killed parents, stale temp files, Ctrl-C, two commands on one --out, umask."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import cli_env, run_inproc

LONG = 'problem = "breast-cancer-logreg"\noptimizer = "sgd"\nepochs = 5000\n'


def _config(tmp: Path, text: str, name: str = "run.toml") -> str:
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def _start(args: list[str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ravine", *args], env=cli_env("pipe"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL, **kwargs)


def _wait_for(predicate, timeout: float = 240.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_stale_temp_files_are_removed_on_the_next_start(tmp_path):
    out = tmp_path / "run"
    (out / "runs" / "sgd").mkdir(parents=True)
    stale = [out / ".checkpoint.pt.k2j4_x.tmp", out / ".config.json.abc123.tmp",
             out / "runs" / "sgd" / ".checkpoint.pt.zzz.tmp"]
    for path in stale:
        path.write_bytes(b"half a file")
    keep = out / "notes.tmp"  # not an atomic-write temp name: left alone
    keep.write_text("mine")
    run = run_inproc(["compare", "--problem", "breast-cancer-logreg", "--optimizers", "sgd", "--epochs", "1",
                      "--out", str(out)])
    assert run.returncode == 0, run.stderr
    assert not any(p.exists() for p in stale)
    assert keep.read_text() == "mine"


def test_files_follow_the_umask(tmp_path):
    from ravine.utils import write_json

    old = os.umask(0o027)
    try:
        run = run_inproc(["compare", "--problem", "breast-cancer-logreg", "--optimizers", "sgd", "--epochs", "1",
                          "--out", str(tmp_path / "a")])
        write_json(tmp_path / "b.json", {"x": [1]})
    finally:
        os.umask(old)
    assert run.returncode == 0, run.stderr
    for path in (tmp_path / "a" / "results.json", tmp_path / "a" / "report.html",
                 tmp_path / "a" / "runs" / "sgd" / "checkpoint.pt", tmp_path / "b.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o640, path  # 0o666 & ~0o027, as open() would give
    old = os.umask(0o002)
    try:
        write_json(tmp_path / "c.json", {})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "c.json").stat().st_mode) == 0o664


def test_train_refuses_a_folder_that_holds_a_run_unless_told(tmp_path):
    cfg = _config(tmp_path, 'problem = "breast-cancer-logreg"\noptimizer = "sgd"\nepochs = 1\n')
    out = str(tmp_path / "run")
    assert run_inproc(["train", cfg, "--out", out]).returncode == 0
    again = run_inproc(["train", cfg, "--out", out])
    assert again.returncode == 2 and "--resume" in again.stderr and "--overwrite" in again.stderr
    fresh = run_inproc(["train", cfg, "--out", out, "--overwrite"])
    assert fresh.returncode == 0, fresh.stderr


def test_a_held_out_folder_is_refused_then_free_again(tmp_path):
    from ravine.commands import common
    from ravine.errors import ConfigError

    common.lock_out(tmp_path, "compare")
    try:
        with pytest.raises(ConfigError, match="in use by `ravine compare`"):
            common.lock_out(tmp_path, "train")  # a second open file: flock refuses it like another process
    finally:
        common.release_locks()
    common.lock_out(tmp_path, "train")
    common.release_locks()


@pytest.mark.slow
def test_second_command_on_the_same_out_refuses_and_ctrl_c_says_how_to_resume(tmp_path):
    out = tmp_path / "run"
    cfg = _config(tmp_path, LONG)
    first = _start(["train", cfg, "--out", str(out)])
    try:
        _wait_for(lambda: (out / "checkpoint.pt").exists() or first.poll() is not None, what="the first checkpoint")
        assert first.poll() is None, first.communicate()
        second = subprocess.run([sys.executable, "-m", "ravine", "compare", "--problem", "breast-cancer-logreg",
                                 "--optimizers", "sgd", "--epochs", "1", "--out", str(out)], env=cli_env("pipe"),
                                capture_output=True, text=True, timeout=300)
        assert second.returncode == 2, second.stderr
        lines = [line for line in second.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "in use by `ravine train`" in lines[0], second.stderr
        assert not (out / "results.json").exists()  # nothing of the second command was written
        first.send_signal(signal.SIGINT)  # what Ctrl-C sends
        stdout, stderr = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert f"--resume --out {out}" in stderr, stderr
    from ravine.commands import common

    common.lock_out(out, "train")  # the lock died with the first process
    common.release_locks()
    from ravine.train.checkpoint import load_checkpoint

    assert load_checkpoint(out / "checkpoint.pt")["epoch"] >= 1  # what the message points to is resumable


@pytest.mark.slow
def test_killing_the_parent_of_a_ddp_run_leaves_no_workers(tmp_path):
    out = tmp_path / "run"
    cfg = _config(tmp_path, LONG + "nproc = 2\n")
    parent = _start(["train", cfg, "--out", str(out)], start_new_session=True)
    try:
        _wait_for(lambda: len(_children(parent.pid)) >= 2 and (out / "checkpoint.pt").exists()
                  or parent.poll() is not None, what="two training workers")
        assert parent.poll() is None, parent.communicate()
        workers = _children(parent.pid)
        parent.kill()  # SIGKILL: no chance to clean up
        parent.wait()
        _wait_for(lambda: not any(_alive(pid) for pid in workers), timeout=30, what="the workers to exit")
    finally:
        try:
            os.killpg(parent.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


_PARENT = r"""
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], str(__import__("os").getpid())])
print(child.pid, flush=True)
time.sleep(600)
"""

_RANK = r"""
import signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)  # a rank busy in a collective, or one that handles Ctrl-C itself
from ravine.train.distributed import die_with_parent
die_with_parent(int(sys.argv[1]), poll_s=0.2)
print("armed", flush=True)
time.sleep(600)
"""


def test_a_rank_dies_with_its_parent_even_when_it_ignores_sigint():
    # torch.multiprocessing only asks the kernel for SIGINT on the parent's death, which a rank can
    # ignore or be unable to act on; die_with_parent asks for SIGKILL (plus a polling fallback).
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, _RANK], env=cli_env("pipe"), stdout=subprocess.PIPE,
                              text=True, start_new_session=True)
    try:
        rank = int(parent.stdout.readline())
        assert parent.stdout.readline().strip() == "armed"  # the rank shares the parent's stdout
        assert _alive(rank)
        parent.kill()
        parent.wait()
        _wait_for(lambda: not _alive(rank), timeout=20, what="the rank to die with its parent")
    finally:
        try:
            os.killpg(parent.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass



def test_compare_refuses_to_start_over_on_an_interrupted_comparison(tmp_path):
    # a Ctrl-C'd comparison keeps its finished runs; a plain rerun must not overwrite them
    out = tmp_path / "cmp"
    out.mkdir()
    saved = '{"complete": false, "missing": ["adam"], "runs": {"sgd": {}}}'
    (out / "results.json").write_text(saved)
    args = ["compare", "--problem", "breast-cancer-logreg", "--optimizers", "sgd", "--epochs", "1", "--out", str(out)]
    run = run_inproc(args)
    assert run.returncode == 2 and len(run.stderr_lines()) == 1
    assert "--resume" in run.stderr and "--overwrite" in run.stderr
    assert (out / "results.json").read_text() == saved  # untouched
    again = run_inproc([*args, "--overwrite"])
    assert again.returncode == 0, again.stderr
    assert '"complete": true' in (out / "results.json").read_text()


def test_an_unforeseen_fault_is_one_internal_error_line_and_debug_shows_the_traceback(monkeypatch, tmp_path):
    """A library error ravine did not foresee (here torch refusing a kernel, as torch.optim.Adagrad's
    fused kernel once did on CUDA) is one line and exit 1, the --out folder is not left behind;
    --debug shows the traceback."""
    import ravine.compare

    def broken(*args, **kwargs):
        raise RuntimeError("`fused=True` requires all the params to be floating point Tensors\nsecond line")

    monkeypatch.setattr(ravine.compare, "compare", broken)
    out = tmp_path / "run"
    args = ["compare", "--problem", "breast-cancer-logreg", "--optimizers", "sgd", "--epochs", "1", "--out", out]
    run = run_inproc(args)
    lines = [ln for ln in (run.stdout + run.stderr).splitlines() if ln.strip()]
    assert run.returncode == 1
    assert len(lines) == 1 and lines[0].startswith("error: internal error: RuntimeError: `fused=True` requires")
    assert "--debug" in lines[0] and "Traceback" not in run.stderr
    assert not out.exists()
    debug = run_inproc([*args, "--debug"])
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "second line" in debug.stderr


def test_a_new_comparison_in_a_finished_ones_folder_replaces_it_whole(tmp_path):
    """Pasting the README's command twice works, and no run of the first comparison is left beside
    the second (files the user put there are kept)."""
    import json

    out = tmp_path / "cmp"
    base = ["compare", "--problem", "breast-cancer-logreg", "--epochs", "1", "--out", out]
    assert run_inproc([*base, "--optimizers", "sgd,adam"]).returncode == 0
    assert (out / "runs" / "adam").is_dir()
    (out / "notes.txt").write_text("mine")
    second = run_inproc([*base, "--optimizers", "sgd"])
    assert second.returncode == 0, second.stdout + second.stderr
    assert "replacing the earlier comparison" in second.stdout
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["sgd"]
    assert list(json.loads((out / "results.json").read_text())["runs"]) == ["sgd"]
    assert (out / "notes.txt").read_text() == "mine" and (out / "report.html").is_file()
