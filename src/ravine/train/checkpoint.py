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
    damaged = _damaged_member(path)
    if damaged:
        raise CheckpointError(f"cannot read checkpoint {path}: corrupt ({damaged}); the file was changed or "
                              "truncated after it was written")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - arbitrary bytes make the unpickler fail in arbitrary ways
        why = ("it holds Python objects other than tensors, numbers, strings, lists and dicts"
               if "weights_only" in str(exc).lower() else "corrupt or not a torch file")
        raise CheckpointError(f"cannot read checkpoint {path}: {why} (not a ravine checkpoint)") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a ravine checkpoint (format marker {FORMAT!r} missing)")
    if not isinstance(state.get("version"), int) or state["version"] > VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {state.get('version')!r}; this ravine reads up to {VERSION}")
    problem = check_structure(state)
    if problem:
        raise CheckpointError(f"checkpoint {path} is damaged: {problem}")
    return state


def _damaged_member(path: Path) -> str | None:
    """The first entry of torch's zip container whose CRC-32 does not match, or None.

    ``torch.load`` does not verify the checksums its writer stores, so flipped bytes in
    tensor data would otherwise load as silently different weights.
    """
    import zipfile

    if not zipfile.is_zipfile(path):
        return None  # torch.load will say what it is
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        return f"unreadable zip container: {exc}"
    return f"checksum mismatch in {bad.rsplit('/', 1)[-1]}" if bad else None


def check_structure(state: dict[str, Any]) -> str | None:
    """What is wrong with the standard entries of a checkpoint, or None (entries not present are fine).

    epoch and iteration: integers >= 0; model: a dict of tensors; optimizer: a dict with
    ``state`` (dict) and ``param_groups`` (list of dicts); schedule: a list of dicts (or
    None); history: sections ``iteration``, ``epoch`` and ``eval`` of equally long lists of
    numbers (or None), ``status`` a string; config: a dict.

    Example:
        >>> check_structure({"epoch": 2, "iteration": -5})
        'iteration is -5 (allowed: an integer >= 0)'
    """
    for key in ("epoch", "iteration"):
        if key in state:
            value = state[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                return f"{key} is {value!r} (allowed: an integer >= 0)"
    if "model" in state and not (isinstance(state["model"], dict)
                                 and all(isinstance(v, torch.Tensor) for v in state["model"].values())):
        return "model is not a dict of tensors"
    opt = state.get("optimizer")
    if opt is not None and not (isinstance(opt, dict) and isinstance(opt.get("state"), dict)
                                and isinstance(opt.get("param_groups"), list)
                                and all(isinstance(g, dict) for g in opt["param_groups"])):
        return "optimizer is not an optimizer state_dict (state and param_groups)"
    sched = state.get("schedule")
    if sched is not None and not (isinstance(sched, list) and all(isinstance(s, dict) for s in sched)):
        return f"schedule is {type(sched).__name__} (allowed: a list of schedule state_dicts)"
    for key in ("config",):
        if key in state and not isinstance(state[key], dict):
            return f"{key} is {type(state[key]).__name__} (allowed: a dict)"
    if "history" in state:
        return _history_problem(state["history"], state.get("iteration"), state.get("epoch"))
    return None


def _history_problem(history: Any, iteration: Any, epoch: Any) -> str | None:
    if not isinstance(history, dict):
        return f"history is {type(history).__name__} (allowed: a dict)"
    for section in ("iteration", "epoch", "eval"):
        table = history.get(section)
        if not isinstance(table, dict) or not all(isinstance(v, list) for v in table.values()):
            return f"history[{section!r}] is not a table of lists"
        lengths = {len(v) for v in table.values()}
        if len(lengths) > 1:
            return f"history[{section!r}] has columns of different lengths {sorted(lengths)}"
        for name, column in table.items():
            if not all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in column):
                return f"history[{section!r}][{name!r}] holds something other than numbers"
    if not isinstance(history.get("status", ""), str):
        return "history['status'] is not a string"
    steps = history["iteration"].get("step", [])
    if isinstance(iteration, int) and steps and steps[-1] != iteration:
        return f"iteration is {iteration} but the history ends at step {steps[-1]}"
    epochs = history["epoch"].get("epoch", [])
    if isinstance(epoch, int) and epochs and epochs[-1] != epoch:
        return f"epoch is {epoch} but the history ends at epoch {epochs[-1]}"
    return None


def weights_mismatch(model: torch.nn.Module, weights: Any) -> str | None:
    """The first way ``weights`` (a checkpoint's ``model``) does not fit ``model``, in words; None when it fits.

    ``load_state_dict``'s own error starts with "Error(s) in loading state_dict for
    Sequential:" and puts the useful part on later lines; this says it in one clause.

    Example:
        >>> net = torch.nn.Linear(3, 2)
        >>> weights_mismatch(net, {"weight": torch.zeros(4, 3), "bias": torch.zeros(2)})
        "its weight has shape [4, 3], the model's [2, 3]"
        >>> weights_mismatch(net, net.state_dict()) is None
        True
    """
    if not isinstance(weights, dict):
        return "it holds no model weights"
    own = model.state_dict()
    for name, tensor in own.items():
        if name not in weights:
            return f"it has no {name}"
        shape = getattr(weights[name], "shape", None)
        if shape is None:
            return f"its {name} is not a tensor"
        if tuple(shape) != tuple(tensor.shape):
            return f"its {name} has shape {list(shape)}, the model's {list(tensor.shape)}"
    extra = [name for name in weights if name not in own]
    return f"it has {extra[0]}, which the model lacks" if extra else None


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
