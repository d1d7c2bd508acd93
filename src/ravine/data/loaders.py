"""The user's own data: CSV and NPZ files, with one-line errors for bad input.

The CSV reader is the standard library's ``csv`` module plus explicit checks
(pandas is not a dependency, and ``np.genfromtxt`` silently turns bad cells
into NaN, which would hide the row and column the user needs to fix).
"""

from __future__ import annotations

import csv
import math
import zipfile
from pathlib import Path
from typing import Literal

import numpy as np

from ravine.data.base import Dataset, Task
from ravine.errors import ConfigError, DataError, unknown_name

TaskOpt = Literal["auto", "classification", "regression"]

#: at most this many distinct integer target values count as classes under task="auto"
MAX_AUTO_CLASSES = 20

#: the largest |value| a feature may hold: its square (standardization, the MSE) must stay finite in float64
MAX_ABS_VALUE = 1e150


def _check_task(task: str) -> str:
    if task not in ("auto", "classification", "regression"):
        raise ConfigError(f"Invalid task: {task!r} (allowed: auto, classification, regression)")
    return task


def _check_file(path: Path, allowed: str) -> None:
    """Refuse a data path that is missing or a folder, saying where it was looked for."""
    if path.is_file():
        return
    where = "" if path.is_absolute() else f" in {Path.cwd()}"
    what = "a folder" if path.is_dir() else f"no such file{where}"
    raise DataError(f"Invalid data: {str(path)!r} ({what}; allowed: {allowed})")


def _read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    _check_file(path, "a CSV file with a header row")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"Invalid data: {str(path)!r} (byte {exc.start} is not UTF-8 text; allowed: a CSV text "
                        "file in UTF-8)") from None
    except OSError as exc:
        raise DataError(f"Invalid data: {str(path)!r} (cannot read it: {exc.strerror or type(exc).__name__})") from None
    rows = [row for row in csv.reader(text.splitlines()) if any(cell.strip() for cell in row)]
    if not rows:
        raise DataError(f"{path} is empty")
    header, body = [h.strip() for h in rows[0]], rows[1:]
    for j, name in enumerate(header):
        if not name:
            raise DataError(f"{path}: column {j + 1} of the header has no name (allowed: a non-empty name per "
                            "column)")
        if header.index(name) != j:
            raise DataError(f"{path}: column name {name!r} appears twice in the header (columns "
                            f"{header.index(name) + 1} and {j + 1}; allowed: each name once)")
    if not body:
        raise DataError(f"{path} has a header but no data rows")
    for i, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise DataError(f"{path}: line {i} has {len(row)} fields, the header has {len(header)}")
    return header, body


def _numeric_column(path: Path, name: str, cells: list[str]) -> np.ndarray | None:
    """The column as floats, or None when some cell is not a number (NaN cells raise)."""
    values = np.empty(len(cells))
    for i, cell in enumerate(cells):
        text = cell.strip()
        try:
            values[i] = float(text)
        except ValueError:
            if text == "" or text.lower() in ("na", "n/a", "null", "none"):
                raise DataError(f"{path}: column {name!r} has a missing value (line {i + 2})") from None
            return None
        if not math.isfinite(values[i]):
            raise DataError(f"{path}: column {name!r} has a NaN or inf value (line {i + 2}: {text!r})")
        if abs(values[i]) > MAX_ABS_VALUE:
            raise DataError(f"{path}: column {name!r} has {text} on line {i + 2} (allowed: |value| <= "
                            f"{MAX_ABS_VALUE:g}, so that squares stay finite; rescale the column)")
    return values


def encode_labels(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Map labels to class indices 0..k−1 in sorted order; return indices and label names.

    Example:
        >>> encode_labels(np.array([5, 3, 5]))
        (array([1, 0, 1]), ['3', '5'])
    """
    classes, indices = np.unique(values, return_inverse=True)
    names = [str(int(c)) if isinstance(c, float | np.floating) and float(c).is_integer() else str(c)
             for c in classes]
    return indices.astype(np.int64), names


def _resolve_task(task: str, y: np.ndarray, numeric: bool) -> Task:
    if task != "auto":
        return task  # type: ignore[return-value]
    if not numeric:
        return "classification"
    integral = np.all(np.equal(np.mod(y, 1), 0))
    return "classification" if integral and len(np.unique(y)) <= MAX_AUTO_CLASSES else "regression"


def load_csv(path: str | Path, target: str | None = None, task: TaskOpt = "auto") -> Dataset:
    """Load a CSV file with a header row; ``target`` names the target column.

    Every other column must be numeric with no missing values. ``target``
    defaults to the last column. With ``task="auto"`` a non-numeric target, or
    an integer target with at most 20 distinct values, means classification
    (labels mapped to 0..k−1 in sorted order); anything else regression.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "d.csv")
        >>> _ = open(p, "w").write("a,b,label\\n1,2,x\\n3,4,y\\n")
        >>> ds = load_csv(p, target="label")
        >>> ds.X.tolist(), ds.y.tolist(), ds.task
        ([[1.0, 2.0], [3.0, 4.0]], [0, 1], 'classification')

    Raises:
        DataError: missing/empty file, missing target column, a non-numeric
            feature column, a missing or NaN value — naming file, column and line.
    """
    path, task = Path(path), _check_task(task)
    header, body = _read_rows(path)
    target = header[-1] if target is None else str(target)
    if target not in header:
        raise unknown_name(f"target column of {path}", target, header, error=DataError)
    if len(header) < 2:
        raise DataError(f"{path}: needs at least one feature column besides the target {target!r}")
    columns = {name: [row[j] for row in body] for j, name in enumerate(header)}
    features = [name for name in header if name != target]
    X = np.empty((len(body), len(features)))
    for j, name in enumerate(features):
        col = _numeric_column(path, name, columns[name])
        if col is None:
            bad = next(i for i, c in enumerate(columns[name]) if not _is_number(c))
            raise DataError(f"{path}: column {name!r} is not numeric (line {bad + 2}: {columns[name][bad].strip()!r})")
        X[:, j] = col
    y_num = _numeric_column(path, target, columns[target])
    y_raw = np.array([c.strip() for c in columns[target]]) if y_num is None else y_num
    resolved = _resolve_task(task, y_raw, y_num is not None)
    if resolved == "regression" and y_num is None:
        raise DataError(f"{path}: target column {target!r} is not numeric; regression needs numbers")
    return _dataset(path.stem, X, y_raw, resolved, features)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _dataset(name: str, X: np.ndarray, y: np.ndarray, task: Task, features: list[str] | None,
             image_shape: tuple[int, int, int] | None = None) -> Dataset:
    class_names = None
    if task == "classification":
        if y.ndim != 1:
            raise DataError(f"{name}: classification needs a 1-D target, got shape {y.shape}")
        y, class_names = encode_labels(y)
        if len(class_names) < 2:
            raise DataError(f"{name}: the target has one class ({class_names[0] if class_names else 'none'}); "
                            "classification needs at least 2")
    else:
        y = y.astype(np.float64)
    return Dataset(name=name, X=X, y=y, task=task, feature_names=features, class_names=class_names,
                   image_shape=image_shape).check()


def load_npz(path: str | Path, task: TaskOpt = "auto") -> Dataset:
    """Load arrays ``X`` (n × d, or n × H × W / n × C × H × W images) and ``y`` from an NPZ file.

    Images are flattened to rows; ``task="auto"`` as in :func:`load_csv`
    (a 2-D ``y`` is multi-output regression).

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "d.npz")
        >>> np.savez(p, X=np.zeros((4, 3)), y=np.array([0.5, 1.5, 2.5, 3.5]))
        >>> load_npz(p).task
        'regression'

    Raises:
        DataError: missing/unreadable file, missing ``X`` or ``y``, mismatched
            lengths, NaN values.
    """
    path, task = Path(path), _check_task(task)
    _check_file(path, "an .npz file with arrays X and y")
    if not zipfile.is_zipfile(path):  # np.load would try it as .npy or a pickle and blame allow_pickle
        raise DataError(f"cannot read {path} as NPZ: not a zip archive (allowed: a file written by numpy.savez "
                        "with arrays X and y)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        why = ("it holds Python objects (allowed: numeric arrays only)" if "pickle" in str(exc)
               else str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise DataError(f"cannot read {path} as NPZ: {why}") from None
    if not isinstance(arrays, dict) or "X" not in arrays or "y" not in arrays:
        found = ", ".join(arrays) if isinstance(arrays, dict) else "a single array"
        raise DataError(f"{path}: needs arrays 'X' and 'y'; found: {found or 'none'}")
    X, y = arrays["X"], arrays["y"]
    if X.dtype.kind not in "biuf" or X.size == 0:
        raise DataError(f"{path}: 'X' must be a non-empty numeric array, got dtype {X.dtype} shape {X.shape}")
    image_shape = None
    if X.ndim == 1:
        X = X[:, None]
    elif X.ndim in (3, 4):
        image_shape = (1, *X.shape[1:]) if X.ndim == 3 else tuple(X.shape[1:])
        X = X.reshape(len(X), -1)
    elif X.ndim != 2:
        raise DataError(f"{path}: 'X' must have 1 to 4 dimensions, got shape {X.shape}")
    if len(y) != len(X):
        raise DataError(f"{path}: 'y' has {len(y)} rows, 'X' has {len(X)}")
    X = X.astype(np.float64)
    if not np.isfinite(X).all():
        raise DataError(f"{path}: 'X' contains NaN or inf")
    if X.size and np.abs(X).max() > MAX_ABS_VALUE:
        raise DataError(f"{path}: 'X' holds {np.abs(X).max():.3g} (allowed: |value| <= {MAX_ABS_VALUE:g}, so that "
                        "squares stay finite; rescale the data)")
    numeric = y.dtype.kind in "biuf"
    if numeric and not np.isfinite(y.astype(np.float64)).all():
        raise DataError(f"{path}: 'y' contains NaN or inf")
    resolved = "regression" if y.ndim == 2 and task == "auto" else _resolve_task(task, y, numeric)
    if resolved == "regression" and not numeric:
        raise DataError(f"{path}: 'y' is not numeric; regression needs numbers")
    return _dataset(path.stem, X, y, resolved, None, image_shape)  # type: ignore[arg-type]
