"""Training checkpoints: one file per run, written atomically, loaded safely.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts, so
that ``torch.load(weights_only=True)`` can read it without unpickling code:

    {"format": "ravine-checkpoint", "version": 1, "epoch": int, "iteration": int,
     "model": state_dict, "optimizer": state_dict, "schedule": state_dict | None,
     "rng": {"shuffle": ByteTensor, "torch": ByteTensor, "cuda": ByteTensor | None},
     "history": dict, "config": dict, "extra": dict}

``torch.save`` is used for the serialisation (it is what ``state_dict`` expects);
ravine only adds the format marker, the atomic temp-file-and-rename write
(:func:`ravine.utils.atomic_write_bytes`) and one-line errors.

Example:
    >>> import tempfile, torch
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "checkpoint.pt"
    >>> save_checkpoint(path, {"epoch": 1, "model": {"w": torch.zeros(2)}})
    >>> load_checkpoint(path)["epoch"]
    1
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch

from ravine.errors import CheckpointError
from ravine.utils import atomic_write_bytes

FORMAT = "ravine-checkpoint"
VERSION = 1
CHECKPOINT_NAME = "checkpoint.pt"


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write ``state`` (plus the format marker) to ``path`` atomically.

    The file is first written to a temp file in the same folder and then renamed
    over ``path``, so a crash mid-write leaves the previous checkpoint intact.

    Args:
        path: destination file.
        state: tensors, numbers, strings, lists and dicts only (what
            ``weights_only=True`` loading accepts).
    """
    payload = {"format": FORMAT, "version": VERSION, **state}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device | None = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`.

    Uses ``torch.load(weights_only=True)``, so a file cannot run code when read.

    Raises:
        CheckpointError: the file is missing, corrupt, not a ravine checkpoint,
            or of a newer format version.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - arbitrary bytes make the unpickler fail in arbitrary ways
        why = ("it holds objects that weights-only loading refuses" if "weights_only" in str(exc).lower()
               else "corrupt or not a torch file")
        raise CheckpointError(f"cannot read checkpoint {path}: {why} (not a ravine checkpoint)") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a ravine checkpoint (format marker {FORMAT!r} missing)")
    if not isinstance(state.get("version"), int) or state["version"] > VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {state.get('version')!r}; this ravine reads up to {VERSION}")
    return state


def rng_state(generator: torch.Generator, device: torch.device) -> dict[str, torch.Tensor | None]:
    """The RNG states a bit-identical resume needs.

    ``shuffle`` is the minibatch-order generator; ``torch`` the global CPU
    generator (dropout on CPU); ``cuda`` the current CUDA device's (dropout on GPU).
    """
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return {"shuffle": generator.get_state(), "torch": torch.get_rng_state(), "cuda": cuda}


def set_rng_state(state: dict[str, torch.Tensor | None], generator: torch.Generator, device: torch.device) -> None:
    """Restore what :func:`rng_state` saved."""
    try:
        generator.set_state(state["shuffle"])
        torch.set_rng_state(state["torch"])
        if device.type == "cuda" and state.get("cuda") is not None:
            torch.cuda.set_rng_state(state["cuda"], device)
    except (KeyError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint RNG state is unusable ({exc})") from None
