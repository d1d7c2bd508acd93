"""Ctrl-C at any moment, and commands that fail after preparing --out: one line, the right exit code, files kept.

The Ctrl-C tests start ``python -m ravine`` for real and send SIGINT (what Ctrl-C sends; under
a pseudo-terminal to the whole foreground process group, as the terminal does) at a moment
picked by watching the process: while torch still loads, during a run, while the report is
drawn, after the command finished.
"""

from __future__ import annotations

import json
import os
import re
import pty
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_helpers import _ANSI, cli_env, run_inproc

from ravine.commands import common

SMALL = ["compare", "--problem", "breast-cancer-logreg", "--optimizers", "sgd,adam", "--epochs", "2"]


class Interrupted:
    """A process that received SIGINT: exit code and output."""

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr

    @property
    def output(self) -> str:
        return _ANSI.sub("", self.stdout + self.stderr).replace("\r", "")

    def lines(self) -> list[str]:
        """The non-empty lines that mention the interruption."""
        return [line for line in self.output.splitlines() if "interrupted" in line]

    def describe(self) -> str:
        return f"exit {self.returncode}\n{self.output[-3000:]}"


def interrupt(args: list[str], when: Callable[[float, str], bool], *, mode: str = "pipe",
              timeout: float = 300.0, may_finish: bool = False) -> Interrupted:
    """Run ``python -m ravine ARGS``; send SIGINT once ``when(seconds since start, output so far)`` holds.

    ``may_finish``: the process may end before the moment comes (a moment at the very end)."""
    cmd = [sys.executable, "-m", "ravine", *args]
    env = cli_env(mode)
    chunks: list[str] = []
    errors: list[str] = []
    if mode == "pty":
        master, slave = pty.openpty()
        proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
        os.close(slave)

        def pump() -> None:
            while True:
                if not select.select([master], [], [], 0.1)[0]:
                    if proc.poll() is not None:
                        return
                    continue
                try:
                    data = os.read(master, 65536)
                except OSError:
                    return
                if not data:
                    return
                chunks.append(data.decode("utf-8", "replace"))

        readers = [threading.Thread(target=pump, daemon=True)]
    else:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=env, text=True)
        readers = [threading.Thread(target=lambda: chunks.extend(iter(proc.stdout.readline, "")), daemon=True),
                   threading.Thread(target=lambda: errors.extend(iter(proc.stderr.readline, "")), daemon=True)]
    for reader in readers:
        reader.start()
    start = time.monotonic()
    try:
        while not when(time.monotonic() - start, "".join(chunks)):
            if proc.poll() is not None:
                if may_finish:
                    break
                raise AssertionError(f"finished before the moment came: exit {proc.returncode}\n"
                                     f"{''.join(chunks)}{''.join(errors)}")
            if time.monotonic() - start > timeout:
                raise AssertionError(f"the moment never came in {timeout} s\n{''.join(chunks)}")
            time.sleep(0.01)
        if mode == "pty":
            os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C goes to the whole foreground group
        else:
            proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
        for reader in readers:
            reader.join(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        if mode == "pty":
            os.close(master)
    return Interrupted(proc.returncode, "".join(chunks), "".join(errors))


def assert_clean(run: Interrupted, *words: str) -> None:
    """Exit 130, no traceback, exactly one line about the interruption (holding ``words``)."""
    assert run.returncode == 130, run.describe()
    assert "Traceback" not in run.output and "KeyboardInterrupt" not in run.output, run.describe()
    lines = run.lines()
    assert len(lines) == 1, run.describe()
    for word in words:
        assert word in lines[0], (word, run.describe())


def _results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


def _complete_results(out: Path) -> bool:
    try:
        return _results(out).get("complete") is True
    except (OSError, ValueError):
        return False


@pytest.mark.parametrize("mode", ["pipe", pytest.param("pty", marks=pytest.mark.slow)])
def test_ctrl_c_while_torch_loads_is_one_line_and_writes_nothing(tmp_path, mode):
    out = tmp_path / "out"
    run = interrupt([*SMALL, "--out", str(out)], lambda t, _: t > 0.4, mode=mode)  # torch takes seconds to load
    assert_clean(run)
    assert not out.exists()


@pytest.mark.slow
def test_ctrl_c_during_a_run_keeps_the_finished_runs_and_says_how_to_resume(tmp_path):
    out = tmp_path / "out"
    args = ["compare", "--problem", "breast-cancer-logreg", "--optimizers", "sgd,adam", "--epochs", "2000",
            "--sequential", "--out", str(out)]
    # adam's first checkpoint: sgd has finished, adam is training
    run = interrupt(args, lambda t, _: (out / "runs" / "adam" / "checkpoint.pt").exists())
    assert_clean(run, f"--resume --out {out}", "adam")
    saved = _results(out)
    assert saved["complete"] is False and list(saved["runs"]) == ["sgd"] and saved["missing"] == ["adam"]
    assert len(saved["runs"]["sgd"]["history"]["epoch"]["epoch"]) == 2001  # epoch 0 and the 2000 trained


@pytest.mark.slow
def test_ctrl_c_while_the_report_is_drawn_keeps_every_run_and_resume_draws_it(tmp_path):
    out = tmp_path / "out"
    # results.json complete, report not yet written: the report is being drawn
    run = interrupt([*SMALL, "--out", str(out)],
                    lambda t, _: _complete_results(out) and not (out / "report.html").exists())
    assert_clean(run, "report", f"--resume --out {out}")
    assert not (out / "report.html").exists()
    saved = _results(out)
    assert saved["complete"] is True and list(saved["runs"]) == ["sgd", "adam"]
    resumed = run_inproc([*SMALL, "--resume", "--out", str(out)])
    assert resumed.returncode == 0, resumed.stderr
    assert (out / "report.html").is_file()
    assert _results(out)["runs"]["adam"]["history"] == saved["runs"]["adam"]["history"]  # not trained again


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["pipe", "pty"])
def test_ctrl_c_after_the_command_finished_changes_nothing_on_disk(tmp_path, mode):
    out = tmp_path / "out"

    def wrote_report(_seconds: float, text: str) -> bool:  # the last line, whatever the terminal did to it
        return "report.html" in re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\s", "", text)

    run = interrupt([*SMALL, "--out", str(out)], wrote_report, mode=mode, may_finish=True)
    # the process may already have exited cleanly (0), or says it was interrupted (130)
    assert run.returncode in (0, 130), run.describe()
    assert "Traceback" not in run.output, run.describe()
    assert len(run.lines()) <= 1, run.describe()
    assert _complete_results(out) and (out / "report.html").is_file()


def test_deferred_sigint_arrives_after_the_write():
    from ravine.utils import sigint_deferred

    done = []
    with pytest.raises(KeyboardInterrupt):
        with sigint_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # the signal has arrived; the block goes on
            done.append(True)
    assert done == [True]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is back


def test_library_ctrl_c_while_drawing_the_report_keeps_results_and_resume_only_draws(tmp_path, monkeypatch):
    import ravine.report
    from ravine.compare import compare
    from ravine.train import Callback
    from ravine.train.results import CompareInterrupted

    real = ravine.report.write_report

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ravine.report, "write_report", ctrl_c)
    with pytest.raises(CompareInterrupted) as stop:
        compare("breast-cancer-logreg", ["sgd", "adam"], epochs=1, device="cpu", out_dir=tmp_path)
    assert stop.value.result.missing == [] and stop.value.out_dir == tmp_path
    assert _results(tmp_path)["complete"] is True and not (tmp_path / "report.html").exists()
    monkeypatch.setattr(ravine.report, "write_report", real)

    class Count(Callback):
        fits = 0

        def on_fit_start(self, state) -> None:
            Count.fits += 1

    compare("breast-cancer-logreg", ["sgd", "adam"], epochs=1, device="cpu", out_dir=tmp_path, resume=True,
            callbacks=[Count()])
    assert Count.fits == 0 and (tmp_path / "report.html").is_file()


# --- a command that fails after preparing --out ------------------------------------------------------------


def _fails_after_out_dir(monkeypatch, out: Path, args: list[str]):
    """Run ``args`` in-process, recording that --out was prepared before the command failed."""
    import ravine.commands.compare as compare_command

    prepared: list[bool] = []
    real = compare_command.out_dir

    def spy(path, command):
        folder = real(path, command)
        prepared.append((folder / common.LOCK_NAME).exists())
        return folder

    monkeypatch.setattr(compare_command, "out_dir", spy)
    run = run_inproc([*args, "--out", str(out)])
    assert prepared == [True], "the command failed before preparing --out (the test would prove nothing)"
    assert run.returncode == 2 and len(run.stderr_lines()) == 1, run.describe()
    assert "Traceback" not in run.output
    assert common._held_locks == []  # the lock was released
    return run


def _bad_csv(tmp_path: Path) -> list[str]:
    data = tmp_path / "bad.csv"
    data.write_text("a,b\n1,2\n3,4\n")
    # the target column is checked when the data loads, after --out is prepared
    return ["compare", "--problem", "csv", "--data", str(data), "--target-column", "nope", "--optimizers", "sgd",
            "--epochs", "1"]


def test_a_failed_command_removes_the_folders_it_created(tmp_path, monkeypatch):
    out = tmp_path / "new" / "deeper"
    run = _fails_after_out_dir(monkeypatch, out, _bad_csv(tmp_path))
    assert "nope" in run.stderr
    assert not (tmp_path / "new").exists()  # both folders were created by ravine, and held only the lock


def test_a_failed_command_leaves_a_folder_that_existed_as_it_was(tmp_path, monkeypatch):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    _fails_after_out_dir(monkeypatch, out, _bad_csv(tmp_path))
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]  # no lock file left behind either
    empty = tmp_path / "empty"
    empty.mkdir()
    _fails_after_out_dir(monkeypatch, empty, _bad_csv(tmp_path))
    assert empty.is_dir() and not any(empty.iterdir())


def test_a_failed_command_keeps_a_created_folder_that_holds_results(tmp_path, monkeypatch):
    import ravine.compare

    out = tmp_path / "new"

    def fails_after_writing(*args, out_dir, **kwargs):
        (out_dir / "results.json").write_text("{}")
        raise ravine.ConfigError("Invalid something: after writing (allowed: nothing)")

    monkeypatch.setattr(ravine.compare, "compare", fails_after_writing)
    _fails_after_out_dir(monkeypatch, out, SMALL)
    assert (out / "results.json").read_text() == "{}"
    common.lock_out(out, "compare")  # free again
    common.release_locks()


@pytest.mark.slow
def test_a_failed_command_removes_its_folder_as_a_real_process(tmp_path):
    out = tmp_path / "new"
    proc = subprocess.run([sys.executable, "-m", "ravine", *_bad_csv(tmp_path), "--out", str(out)],
                          env=cli_env("pipe"), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert not out.exists()


def test_train_ctrl_c_after_training_keeps_the_run_and_resume_writes_the_report(tmp_path, monkeypatch):
    import ravine.commands.train as train_command

    cfg = tmp_path / "run.toml"
    cfg.write_text('problem = "breast-cancer-logreg"\noptimizer = "sgd"\nepochs = 2\n')
    out = tmp_path / "out"
    real = train_command._write_report

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_command, "_write_report", ctrl_c)
    run = run_inproc(["train", str(cfg), "--out", str(out)])
    assert run.returncode == 130 and len(run.stderr_lines()) == 1, run.describe()
    assert f"--resume --out {out}" in run.stderr and "Traceback" not in run.output
    assert (out / "checkpoint.pt").is_file() and (out / "result.json").is_file()
    assert not (out / "report.html").exists()
    monkeypatch.setattr(train_command, "_write_report", real)
    again = run_inproc(["train", str(cfg), "--resume", "--out", str(out)])
    assert again.returncode == 0, again.describe()
    assert (out / "report.html").is_file()
