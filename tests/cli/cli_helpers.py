"""Run the ``ravine`` command line the way a user does: under a terminal, piped, or on a dumb terminal.

``run_cli(args, mode=...)`` starts ``python -m ravine ARGS`` in a fresh process (so the
environment, the terminal and the exit code are real) and returns a :class:`CliRun`:

- ``mode="pty"``: stdin/stdout/stderr are a pseudo-terminal of 80 x 24 (Rich sees a real
  terminal: colours, live progress bars, cursor movement). stdout and stderr arrive merged
  in ``output`` (as on a screen); ``stderr`` is empty.
- ``mode="pipe"``: stdout and stderr are separate pipes (``ravine ... | tee log``).
- ``mode="dumb"``: a pseudo-terminal again, with ``TERM=dumb`` and ``NO_COLOR=1``.

Every mode sets ``COLUMNS=80``. ``CliRun.text`` is the output with ANSI escapes removed.

Other commands join the shared table in ``test_terminal.py`` by adding one ``Command`` row
(its arguments, built from ``tmp_path``, and the files it must write).

In-process runs (``run_inproc``) call ``ravine.cli.main(args)`` with captured streams; they
are ~50x faster than a subprocess and serve the bad-input fuzz table.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][A-Z0-9]|\x1b[=>]")


@dataclass
class CliRun:
    """What a command did: exit code and output (``output`` = stdout + stderr as they arrived)."""

    args: list[str]
    mode: str
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def text(self) -> str:
        """The output without ANSI escape sequences and carriage returns."""
        return _ANSI.sub("", self.output).replace("\r", "")

    def stderr_lines(self) -> list[str]:
        return [line for line in _ANSI.sub("", self.stderr).splitlines() if line.strip()]

    def describe(self) -> str:
        return f"ravine {' '.join(self.args)} [{self.mode}] -> exit {self.returncode}\n{self.text[-3000:]}"


def cli_env(mode: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a run in ``mode``: this worktree's sources first, 80 columns."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("NO_COLOR", "FORCE_COLOR", "TERM", "COLUMNS", "LINES", "TTY_COMPATIBLE", "TTY_INTERACTIVE")}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])])
    env.update({"COLUMNS": "80", "LINES": "24", "RAVINE_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"})
    env["TERM"] = "dumb" if mode == "dumb" else "xterm-256color"
    if mode == "dumb":
        env["NO_COLOR"] = "1"
    env.update(extra or {})
    return env


def run_cli(args: list[str], mode: str = "pipe", *, env: dict[str, str] | None = None, cwd: str | Path | None = None,
            timeout: float = 300.0) -> CliRun:
    """Run ``python -m ravine ARGS`` in ``mode`` ("pty", "pipe" or "dumb"); see the module docstring."""
    if mode not in ("pty", "pipe", "dumb"):
        raise ValueError(f"mode must be pty, pipe or dumb, not {mode!r}")
    cmd = [sys.executable, "-m", "ravine", *map(str, args)]
    full_env = cli_env(mode, env)
    if mode == "pipe":
        proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, cwd=cwd, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        return CliRun(list(map(str, args)), mode, proc.returncode, proc.stdout, proc.stderr)
    return _run_pty(cmd, list(map(str, args)), mode, full_env, cwd, timeout)


def _run_pty(cmd: list[str], args: list[str], mode: str, env: dict[str, str], cwd: str | Path | None,
             timeout: float) -> CliRun:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd,
                            start_new_session=True, close_fds=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                raise TimeoutError(f"ravine {' '.join(args)} [{mode}] ran past {timeout} s")
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every writer of the terminal has closed it
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                # exited; drain what is left without blocking
                while select.select([master], [], [], 0.05)[0]:
                    try:
                        data = os.read(master, 65536)
                    except OSError:
                        data = b""
                    if not data:
                        break
                    chunks.append(data)
                break
    finally:
        os.close(master)
    rc = proc.wait(timeout=30)
    return CliRun(args, mode, rc, b"".join(chunks).decode("utf-8", "replace"), "")


def run_inproc(args: list[str]) -> CliRun:
    """Run ``ravine.cli.main(args)`` in this process with stdout/stderr captured (for fast tables).

    An exception escaping ``main`` is printed as the interpreter would (a traceback) and
    counted as exit code 1.
    """
    import inspect

    from ravine import cli

    out, err = io.StringIO(), io.StringIO()
    rc = 0
    argv = list(map(str, args))
    takes_args = bool(inspect.signature(cli.main).parameters)
    old_argv = sys.argv
    sys.argv = ["ravine", *argv]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            cli.main(argv) if takes_args else cli.main()
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:  # noqa: BLE001 - we want exactly what a user would see
            traceback.print_exc(file=err)
            rc = 1
        finally:
            sys.argv = old_argv
    return CliRun(list(map(str, args)), "inproc", rc, out.getvalue(), err.getvalue())
