"""MNIST / Fashion-MNIST from IDX files on disk (raw or gzipped); nothing is downloaded.

The IDX format (LeCun et al.): two zero bytes, a type byte (0x08 unsigned byte,
0x09 signed byte, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64), a byte
with the number of dimensions, then each dimension as a big-endian uint32, then
the data in big-endian C order. torchvision reads these too, but it is not a
dependency; the format is a dozen lines of NumPy.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from ravine.data.base import Dataset
from ravine.errors import DataError, unknown_name

_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

#: the standard file names; each may also end in ``.gz``
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

# torchvision's folder names, so a torchvision download folder works as --data-dir
_SUBDIRS = {"mnist": ("", "raw", "MNIST/raw", "mnist"), "fashion-mnist": ("", "raw", "FashionMNIST/raw",
                                                                          "fashion-mnist", "fashion")}

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                   "Bag", "Ankle boot"]


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (raw, or gzip-compressed — detected from its first bytes).

    Example:
        >>> import tempfile, os, struct
        >>> p = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte")
        >>> _ = open(p, "wb").write(struct.pack(">HBBI", 0, 0x08, 1, 3) + bytes([7, 0, 9]))
        >>> read_idx(p).tolist()
        [7, 0, 9]

    Raises:
        DataError: missing file, bad magic number, or a size that does not match the header.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except FileNotFoundError:
        raise DataError(f"IDX file not found: {path}") from None
    except (OSError, EOFError) as exc:  # gzip's BadGzipFile is an OSError without strerror
        why = getattr(exc, "strerror", None) or (str(exc).splitlines() or [type(exc).__name__])[0]
        raise DataError(f"Invalid data_dir: cannot read the IDX file {path} ({why})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES or raw[3] == 0:
        raise DataError(f"{path} is not an IDX file (bad magic number {raw[:4].hex() or 'empty'})")
    ndim, dtype = raw[3], np.dtype(_IDX_TYPES[raw[2]])
    if len(raw) < 4 + 4 * ndim:
        raise DataError(f"{path}: truncated IDX header")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(dims)) * dtype.itemsize
    data = raw[4 + 4 * ndim:]
    if len(data) != expected:
        raise DataError(f"{path}: IDX header says {dims} ({expected} bytes) but the file has {len(data)} data bytes")
    return np.frombuffer(data, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def _find(data_dir: Path, variant: str, stem: str) -> Path | None:
    for sub in _SUBDIRS[variant]:
        for name in (stem, stem + ".gz"):
            candidate = data_dir / sub / name
            if candidate.is_file():
                return candidate
    return None


def load_mnist(data_dir: str | Path, variant: str = "mnist", limit: int | None = None) -> Dataset:
    """Load MNIST or Fashion-MNIST from the standard IDX files in ``data_dir``.

    Looks for ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (each raw or
    ``.gz``) in ``data_dir`` and its torchvision-style subfolders (``raw/``,
    ``MNIST/raw/``, ``FashionMNIST/raw/``). Pixels are returned as floats in
    [0, 255]; the official test set becomes ``X_test``.

    Args:
        data_dir: the folder.
        variant: ``"mnist"`` or ``"fashion-mnist"`` (only the class names differ).
        limit: keep only the first ``limit`` training and test images (for quick runs).

    Raises:
        DataError: a file is missing (naming the names looked for) or inconsistent.
    """
    if variant not in _SUBDIRS:
        raise unknown_name("IDX dataset", variant, _SUBDIRS)
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        what = "a file" if data_dir.exists() else "no such folder"
        raise DataError(f"Invalid data_dir: {str(data_dir)!r} ({what}; allowed: a folder holding the {variant} IDX "
                        f"files {', '.join(stem + '[.gz]' for stem in MNIST_FILES.values())})")
    arrays = {}
    for key, stem in MNIST_FILES.items():
        found = _find(data_dir, variant, stem)
        if found is None:
            looked = ", ".join(f"{stem}[.gz]" for stem in MNIST_FILES.values())
            raise DataError(f"Invalid data_dir: {str(data_dir)!r} (no {stem}[.gz] in it; allowed: a folder "
                            f"holding the {variant} IDX files {looked}, directly or under "
                            f"{', '.join(s + '/' for s in _SUBDIRS[variant] if s)})")
        arrays[key] = read_idx(found)
    parts = []
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(f"{variant} {split}: images {images.shape} and labels {labels.shape} do not match")
        if len(labels) and (labels.min() < 0 or labels.max() > 9):
            raise DataError(f"{variant} {split}: label {int(labels.max())} out of range (allowed: 0-9)")
        n = len(images) if limit is None else min(limit, len(images))
        parts.append((images[:n].reshape(n, -1).astype(np.float64), labels[:n].astype(np.int64)))
    (X, y), (X_test, y_test) = parts
    height, width = arrays["train_images"].shape[1:]
    classes = FASHION_CLASSES if variant == "fashion-mnist" else [str(i) for i in range(10)]
    return Dataset(name=variant, X=X, y=y, task="classification", class_names=classes,
                   image_shape=(1, height, width), X_test=X_test, y_test=y_test).check()
