"""CSV, NPZ and IDX loaders: round trips on generated files, one-line DataErrors on bad input."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from ravine.data import load_csv, load_mnist, load_npz, read_idx
from ravine.errors import ConfigError, DataError


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ---------------------------------------------------------------------------------------- CSV


def test_csv_classification_with_string_labels(tmp_path: Path) -> None:
    p = write(tmp_path, "d.csv", "a,species,b\n1,setosa,2\n3,virginica,4\n5,setosa,6\n")
    ds = load_csv(p, target="species")
    assert ds.task == "classification" and ds.feature_names == ["a", "b"]
    np.testing.assert_array_equal(ds.X, [[1, 2], [3, 4], [5, 6]])
    np.testing.assert_array_equal(ds.y, [0, 1, 0])
    assert ds.class_names == ["setosa", "virginica"]


def test_csv_auto_task_and_default_target(tmp_path: Path) -> None:
    p = write(tmp_path, "r.csv", "x1,x2,y\n1,2,0.5\n2,3,1.25\n3,4,2.0\n")
    ds = load_csv(p)  # target: the last column
    assert ds.task == "regression" and ds.y.tolist() == [0.5, 1.25, 2.0]
    q = write(tmp_path, "c.csv", "x,label\n1,3\n2,5\n3,3\n")
    ds = load_csv(q)
    assert ds.task == "classification" and ds.y.tolist() == [0, 1, 0] and ds.class_names == ["3", "5"]
    assert load_csv(q, task="regression").y.tolist() == [3.0, 5.0, 3.0]


@pytest.mark.parametrize(("text", "pattern"), [
    ("a,b,y\n1,nan,0\n2,3,1\n", r"d\.csv: column 'b' has a NaN"),
    ("a,b,y\n1,,0\n2,3,1\n", r"d\.csv: column 'b' has a missing value \(line 2\)"),
    ("a,b,y\n1,2,0\n2,hello,1\n", r"d\.csv: column 'b' is not numeric \(line 3: 'hello'\)"),
    ("", r"d\.csv is empty"),
    ("\n\n", r"d\.csv is empty"),
    ("a,b,y\n", r"d\.csv has a header but no data rows"),
    ("a,b,y\n1,2\n", r"d\.csv: line 2 has 2 fields, the header has 3"),
    ("a,b,y\n1,2,inf\n", r"d\.csv: column 'y' has a NaN or inf"),
])
def test_csv_errors_are_one_line_and_name_file_and_column(tmp_path: Path, text: str, pattern: str) -> None:
    p = write(tmp_path, "d.csv", text)
    with pytest.raises(DataError, match=pattern) as info:
        load_csv(p, target="y")
    assert "\n" not in str(info.value)


def test_csv_missing_target_lists_columns(tmp_path: Path) -> None:
    p = write(tmp_path, "d.csv", "a,b,y\n1,2,0\n")
    with pytest.raises(DataError, match=r"Invalid target column of .*d.csv: 'label' \(allowed: a, b, y\)"):
        load_csv(p, target="label")


def test_csv_missing_file_and_bad_task(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"Invalid data: .*nope.csv' \(no such file; allowed: a CSV file"):
        load_csv(tmp_path / "nope.csv")
    with pytest.raises(DataError, match=r"Invalid data: .* \(a folder; allowed: a CSV file"):
        load_csv(tmp_path)
    p = write(tmp_path, "d.csv", "a,y\n1,cat\n2,dog\n")
    with pytest.raises(DataError, match="target column 'y' is not numeric"):
        load_csv(p, task="regression")
    with pytest.raises(ConfigError, match="task"):
        load_csv(p, task="clustering")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------- NPZ


def test_npz_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 3)), rng.normal(size=20)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    ds = load_npz(tmp_path / "d.npz")
    np.testing.assert_array_equal(ds.X, X)
    np.testing.assert_array_equal(ds.y, y)
    assert ds.task == "regression"
    labels = np.array([2, 7, 7, 2, 9])
    np.savez(tmp_path / "img.npz", X=rng.integers(0, 255, size=(5, 4, 4)).astype(np.uint8), y=labels)
    img = load_npz(tmp_path / "img.npz")
    assert img.X.shape == (5, 16) and img.image_shape == (1, 4, 4)
    assert img.task == "classification" and img.y.tolist() == [0, 1, 1, 0, 2]


@pytest.mark.parametrize(("arrays", "pattern"), [
    ({"X": np.zeros((3, 2))}, r"needs arrays 'X' and 'y'; found: X"),
    ({"X": np.zeros((3, 2)), "y": np.zeros(4)}, r"'y' has 4 rows, 'X' has 3"),
    ({"X": np.array([[1.0, np.nan]]), "y": np.zeros(1)}, r"'X' contains NaN"),
    ({"X": np.zeros((2, 2)), "y": np.array([1.0, np.nan])}, r"'y' contains NaN"),
    ({"X": np.array([["a", "b"]]), "y": np.zeros(1)}, r"'X' must be a non-empty numeric array"),
])
def test_npz_errors(tmp_path: Path, arrays: dict, pattern: str) -> None:
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=pattern):
        load_npz(tmp_path / "bad.npz")


def test_npz_not_an_npz(tmp_path: Path) -> None:
    p = write(tmp_path, "x.npz", "hello")
    with pytest.raises(DataError, match="cannot read"):
        load_npz(p)
    with pytest.raises(DataError, match=r"Invalid data: .*missing.npz' \(no such file; allowed: an .npz file"):
        load_npz(tmp_path / "missing.npz")


# ---------------------------------------------------------------------------------------- IDX
# The IDX format written here from its definition: magic 0x00000803 (unsigned bytes, 3 dims)
# or 0x00000801 (1 dim), then each dimension as a big-endian uint32, then the bytes.


def idx_bytes(array: np.ndarray) -> bytes:
    magic = 0x00000800 | array.ndim
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_mnist(folder: Path, n_train: int = 12, n_test: int = 6, gz: bool = False, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, size=(n_train, 28, 28)),
        "train-labels-idx1-ubyte": np.arange(n_train) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, size=(n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": np.arange(n_test) % 10,
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        raw = idx_bytes(array)
        if gz:
            (folder / (name + ".gz")).write_bytes(gzip.compress(raw))
        else:
            (folder / name).write_bytes(raw)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path: Path, gz: bool) -> None:
    images = np.random.default_rng(0).integers(0, 256, size=(3, 5, 4))
    raw = idx_bytes(images)
    path = tmp_path / "imgs"
    path.write_bytes(gzip.compress(raw) if gz else raw)
    np.testing.assert_array_equal(read_idx(path), images)
    labels = np.array([3, 1, 4, 1, 5])
    (tmp_path / "labels").write_bytes(idx_bytes(labels))
    np.testing.assert_array_equal(read_idx(tmp_path / "labels"), labels)


def test_idx_bad_files(tmp_path: Path) -> None:
    (tmp_path / "bad").write_bytes(b"\x12\x34\x56\x78" + bytes(10))
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(idx_bytes(np.zeros((2, 3, 3)))[:-1])
    with pytest.raises(DataError, match=r"header says \(2, 3, 3\)"):
        read_idx(tmp_path / "short")


@pytest.mark.parametrize(("gz", "sub"), [(False, ""), (True, ""), (False, "MNIST/raw")])
def test_load_mnist_from_generated_files(tmp_path: Path, gz: bool, sub: str) -> None:
    arrays = write_mnist(tmp_path / sub if sub else tmp_path, gz=gz)
    ds = load_mnist(tmp_path, "mnist")
    assert ds.X.shape == (12, 784) and ds.X_test.shape == (6, 784) and ds.image_shape == (1, 28, 28)
    np.testing.assert_array_equal(ds.X[3], arrays["train-images-idx3-ubyte"][3].ravel())
    np.testing.assert_array_equal(ds.y_test, arrays["t10k-labels-idx1-ubyte"])
    assert load_mnist(tmp_path, "mnist", limit=4).X.shape == (4, 784)


def test_load_mnist_missing_files_say_what_was_looked_for(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"Invalid data_dir: .*nowhere' \(no such folder; allowed: a folder holding"):
        load_mnist(tmp_path / "nowhere")
    with pytest.raises(DataError, match=r"Invalid data_dir: .* \(no train-images-idx3-ubyte\[\.gz\] in it; .*t10k-labels-idx1-ubyte"):
        load_mnist(tmp_path, "fashion-mnist")
    write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match=r"no t10k-labels-idx1-ubyte\[\.gz\] in it"):
        load_mnist(tmp_path)
