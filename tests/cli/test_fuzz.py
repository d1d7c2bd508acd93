"""The bad-input table (``fuzz_cases.py``): every row ends in exit code 2, exactly one line on stderr, no traceback.

Rows run in this process through ``ravine.cli.main`` (a subprocess per row would take
minutes); ``test_fuzz_rows_in_real_processes`` replays a sample as real processes.
"""

from __future__ import annotations

import signal

import pytest
from cli_helpers import run_cli, run_inproc
from fuzz_cases import EXPECT, cases


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return cases(tmp_path_factory.mktemp("fuzz"))




def _timeout(*_):
    raise TimeoutError("a bad input was accepted and started working")


def test_every_bad_input_is_one_line_and_exit_2(table):
    failures = []
    old = signal.signal(signal.SIGALRM, _timeout)
    try:
        for case_id, args in table:
            signal.alarm(120)
            try:
                run = run_inproc(args)
            finally:
                signal.alarm(0)
            lines = run.stderr_lines()
            ok = run.returncode == 2 and len(lines) == 1 and "Traceback" not in run.output
            if ok and case_id in EXPECT:
                ok = EXPECT[case_id] in lines[0]
            if not ok:
                failures.append(f"{case_id}: exit {run.returncode}, stderr {run.stderr[-600:]!r}")
    finally:
        signal.signal(signal.SIGALRM, old)
    assert not failures, "\n".join(failures)
    assert len(table) >= 80  # the table did not shrink by accident
    assert len(dict(table)) == len(table), "two rows share an id (the later one would hide the earlier)"
    assert not set(EXPECT) - set(dict(table)), "EXPECT names a row the table lacks"


@pytest.mark.slow
@pytest.mark.parametrize("case_id", ["compare-out-is-file", "lr-two-numbers", "option-typo", "seed-huge",
                                     "nproc-too-many", "checkpoint-flipped", "bench-out-unwritable"])
def test_fuzz_rows_in_real_processes(table, case_id):
    args = dict(table)[case_id]
    run = run_cli(args, "pipe")
    assert run.returncode == 2, run.describe()
    assert len(run.stderr_lines()) == 1, run.describe()
    assert "Traceback" not in run.output


def test_out_is_checked_before_any_work(tmp_path):
    # bench nist ran its whole suite (11 s) before failing on --out; now it fails at once, writing nothing
    blocker = tmp_path / "file"
    blocker.write_text("x")
    run = run_inproc(["bench", "nist", "--out", str(blocker / "sub")])
    assert run.returncode == 2 and "cannot write" in run.stderr
    assert blocker.read_text() == "x"
