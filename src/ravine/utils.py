"""Small shared helpers: devices, seeds, output folders, atomic writes."""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import tempfile
from pathlib import Path
from typing import Any
from collections.abc import Iterator

import torch

from ravine.errors import RavineError

#: suffix of the temp files of :func:`atomic_write_bytes`
TEMP_SUFFIX = ".tmp"


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"auto"`` into a ``torch.device``.

    ``"auto"`` picks CUDA when it is available, else the CPU.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if isinstance(device, torch.device):
        return device
    name = str(device).strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RavineError(f"Invalid device: {device!r} (CUDA is not available here; allowed: cpu, auto)")
        return torch.device(name)
    raise RavineError(f"Invalid device: {device!r} (allowed: cpu, cuda, cuda:N, auto)")


def default_out(command: str) -> Path:
    """``runs/<command>-<timestamp>``, the default ``--out`` of every command."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{command}-{stamp}"


def current_umask() -> int:
    """The process's umask (read without changing it where Linux allows).

    Example:
        >>> 0 <= current_umask() <= 0o777
        True
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # set-and-restore: the only portable way to read it
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder and a rename.

    The file gets the permissions a plain ``open(path, "w")`` would give
    (0o666 minus the umask): ``mkstemp`` creates it 0o600, which would hide
    results from the user's group.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def remove_stale_temp_files(folder: str | os.PathLike) -> list[Path]:
    """Delete the temp files of atomic writes that a killed process left in ``folder`` (and below).

    Only names of the form ``.NAME.XXXX.tmp`` (what :func:`atomic_write_bytes`
    creates) are touched; call it only while holding the folder (see
    ``ravine.commands.common.out_dir``), since a live writer's temp file looks the same.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp()); _ = (d / ".checkpoint.pt.ab12.tmp").write_bytes(b"")
        >>> [p.name for p in remove_stale_temp_files(d)]
        ['.checkpoint.pt.ab12.tmp']
    """
    removed = []
    for tmp in Path(folder).rglob(f".*{TEMP_SUFFIX}"):
        if tmp.is_file() and tmp.name.count(".") >= 3:
            try:
                tmp.unlink()
                removed.append(tmp)
            except OSError:
                pass
    return removed


@contextlib.contextmanager
def sigint_deferred() -> Iterator[None]:
    """Hold a Ctrl-C (SIGINT) until the block ends, then deliver it: for writes that must land whole.

    Off the main thread (where Python cannot set signal handlers) this does nothing.

    Example:
        >>> with sigint_deferred():
        ...     write_json(Path(tempfile.mkdtemp()) / "results.json", {"loss": [0.5]})
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if held:
            signal.raise_signal(signal.SIGINT)  # to the handler that was there before


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically (NaN/inf become null)."""
    atomic_write_bytes(path, json.dumps(_jsonable(obj), indent=2, allow_nan=False).encode())


def _jsonable(obj: Any) -> Any:
    import math

    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return _jsonable(obj.tolist())
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj
