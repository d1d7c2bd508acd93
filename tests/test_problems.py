"""The problem registry: every problem builds on its data, residuals match the loss, seeds
reproduce, options are validated, default learning rates resolve."""

from __future__ import annotations

import gzip
import math
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

import ravine.optim
from ravine import problems
from ravine.errors import ConfigError, UnknownNameError
from ravine.train.spec import default_lr, resolve_spec

REQUIRED = ["digits-mlp", "digits-cnn", "breast-cancer-logreg", "diabetes-linreg", "sparse-sigmoid",
            "unnormalized-regression", "noisy-quadratic", "mnist-mlp", "fashion-mnist-mlp", "csv", "npz"]


def idx_file(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">I", 0x00000800 | array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("problem-data")
    rng = np.random.default_rng(0)
    mnist = root / "mnist"
    mnist.mkdir()
    for split, n in (("train", 60), ("t10k", 20)):
        idx_file(mnist / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, size=(n, 28, 28)))
        idx_file(mnist / f"{split}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    X = rng.normal(size=(50, 3))
    lines = ["f1,f2,f3,kind"] + [f"{a},{b},{c},{'ab'[int(a > 0)]}" for a, b, c in X]
    (root / "d.csv").write_text("\n".join(lines) + "\n")
    np.savez(root / "d.npz", X=X, y=X @ np.array([1.0, -2.0, 0.5]))
    return {"mnist": mnist, "csv": root / "d.csv", "npz": root / "d.npz"}


def options_for(name: str, files: dict[str, Path]) -> dict:
    if name in ("mnist-mlp", "fashion-mnist-mlp"):
        return {"data_dir": str(files["mnist"])}
    if name == "csv":
        return {"data": str(files["csv"]), "target": "kind"}
    if name == "npz":
        return {"data": str(files["npz"])}
    return {}


def test_registry_lists_the_required_problems() -> None:
    assert set(REQUIRED) <= set(problems.names())
    assert problems.names()[0] == "digits-mlp"
    rows = problems.describe()
    assert [r["name"] for r in rows] == problems.names()
    for row in rows:
        assert {"name", "data", "model", "loss", "metric", "defaults"} <= set(row)


def test_unknown_problem_lists_known() -> None:
    with pytest.raises(UnknownNameError, match=r"Invalid problem: 'cifar-mlp' \(.*allowed: .*digits-mlp"):
        problems.get("cifar-mlp")


@pytest.mark.parametrize("name", problems.names())  # the registry drives it: a new problem is tested at once
def test_every_problem_builds_and_its_functions_agree(name: str, files: dict[str, Path]) -> None:
    prob = problems.get(name)
    inst = prob.build(seed=0, dtype=torch.float64, **options_for(name, files))
    d = inst.data
    assert len(d.X_train) > 0 and len(d.X_val) > 0 and len(d.X_test) > 0
    assert d.X_train.dtype == torch.float64
    out = inst.model(d.X_train)
    loss = inst.loss_fn(out, d.y_train)
    assert loss.ndim == 0 and math.isfinite(loss.item())
    loss.backward()
    metric = inst.metric_fn(out, d.y_train)
    assert isinstance(metric, float) and isinstance(inst.error_fn(out, d.y_train), float)
    expected_error = 1 - metric if inst.higher_is_better else metric
    assert inst.error_fn(out, d.y_train) == pytest.approx(expected_error)
    if name in ("csv", "npz"):  # the user's data: no known reference error
        assert math.isnan(inst.reference_error)
    else:
        assert inst.reference_error >= 0
    assert math.isfinite(inst.target)
    if inst.residual_fn is not None:
        # ½‖r‖² must be the loss, on outputs that are not the model's
        noisy = out.detach() + torch.randn(out.shape, dtype=out.dtype, generator=torch.Generator().manual_seed(1))
        r = inst.residual_fn(noisy, d.y_train)
        assert r.ndim == 1
        torch.testing.assert_close(0.5 * r.square().sum(), inst.loss_fn(noisy, d.y_train))
    assert (inst.residual_fn is not None) == (inst.metric_name == "rmse")


def test_same_seed_same_split_and_weights() -> None:
    prob = problems.get("digits-mlp")
    a, b, c = prob.build(seed=3), prob.build(seed=3), prob.build(seed=4)
    assert torch.equal(a.data.X_train, b.data.X_train) and torch.equal(a.data.y_val, b.data.y_val)
    for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(p, q)
    assert not torch.equal(a.data.y_train, c.data.y_train)
    assert not torch.equal(next(a.model.parameters()), next(c.model.parameters()))


def test_loss_and_metric_functions_against_their_formulas() -> None:
    g = torch.Generator().manual_seed(0)
    z, y = torch.randn(7, 4, generator=g, dtype=torch.float64), torch.tensor([0, 3, 1, 1, 2, 0, 3])
    manual_ce = -(z.exp() / z.exp().sum(1, keepdim=True))[torch.arange(7), y].log().mean()
    torch.testing.assert_close(problems.cross_entropy(z, y), manual_ce)
    assert problems.accuracy(z, y) == sum(int(z[i].argmax() == y[i]) for i in range(7)) / 7
    logit, t = torch.randn(9, 1, generator=g, dtype=torch.float64), torch.tensor([0.0, 1.0] * 4 + [1.0]).double()
    p = 1 / (1 + torch.exp(-logit[:, 0]))
    torch.testing.assert_close(problems.bce(logit, t), -(t * p.log() + (1 - t) * (1 - p).log()).mean())
    assert problems.binary_accuracy(logit, t) == sum(int((logit[i, 0] > 0) == (t[i] == 1)) for i in range(9)) / 9
    pred, target = torch.randn(5, 1, generator=g, dtype=torch.float64), torch.randn(5, generator=g).double()
    assert problems.rmse(pred, target) == pytest.approx(math.sqrt(((pred[:, 0] - target) ** 2).mean().item()))


def test_diabetes_reference_is_the_least_squares_validation_error() -> None:
    inst = problems.get("diabetes-linreg").build(seed=0, dtype=torch.float64)
    d = inst.data
    A = np.hstack([d.X_train.numpy(), np.ones((len(d.X_train), 1))])
    coef = np.linalg.lstsq(A, d.y_train.numpy(), rcond=None)[0]
    val = np.hstack([d.X_val.numpy(), np.ones((len(d.X_val), 1))]) @ coef
    assert inst.reference_error == pytest.approx(np.sqrt(np.mean((val - d.y_val.numpy()) ** 2)), rel=1e-9)
    assert inst.target > inst.reference_error


def test_unnormalized_regression_standardize_switch() -> None:
    prob = problems.get("unnormalized-regression")
    raw = prob.build(seed=0).data.X_train
    std = prob.build(seed=0, standardize=True).data.X_train
    assert raw.mean().item() > 900 and abs(std.mean().item()) < 1e-5
    # the raw problem needs a far smaller GD step than the standardized one
    assert default_lr("sgd", prob)[0] < 1e-5 < default_lr("sgd", prob, {"standardize": True})[0]


def test_breast_cancer_is_binary_logistic_regression() -> None:
    inst = problems.get("breast-cancer-logreg").build(seed=0)
    assert set(inst.data.y_train.unique().tolist()) == {0.0, 1.0}
    assert [type(m) for m in inst.model] == [torch.nn.Linear] and torch.all(inst.model[0].weight == 0)


@pytest.mark.parametrize(("name", "options", "pattern"), [
    ("digits-mlp", {"standardise": True}, r"Invalid option for problem 'digits-mlp': 'standardise' "
                                          r"\(did you mean 'standardize'\? allowed: .*standardize"),
    ("digits-mlp", {"standardize": "yes"}, r"Invalid standardize: 'yes'"),
    ("digits-mlp", {"hidden": "64,x"}, r"Invalid hidden"),
    ("mnist-mlp", {}, r"Invalid data_dir: none given for problem mnist-mlp \(allowed: a folder .*--data-dir DIR"),
    ("csv", {}, r"Invalid data: none given for problem csv \(allowed: the path of a .csv file: --data FILE"),
    ("noisy-quadratic", {"condition": -1}, r"Invalid condition"),
])
def test_options_are_validated(name: str, options: dict, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        problems.get(name).build(seed=0, **options)


def test_model_options_reach_the_model() -> None:
    inst = problems.get("digits-mlp").build(seed=0, hidden="32", activation="tanh", norm="layer", dropout=0.1)
    kinds = [type(m).__name__ for m in inst.model]
    assert kinds == ["Linear", "LayerNorm", "Tanh", "Dropout", "Linear"] and inst.model[0].out_features == 32


def test_default_lr_falls_back_to_the_registry() -> None:
    digits = problems.get("digits-mlp")
    for name in ("sgd", "momentum", "adam"):
        entry = ravine.optim.info(name)
        expected = digits.lr.get(name, entry.train_lr)
        assert default_lr(name, digits) == (expected, "registry")
    quad = problems.get("noisy-quadratic")
    assert default_lr("sgd", quad) == (quad.lr["sgd"], "problem")
    assert default_lr("gd", quad) == (quad.lr["sgd"], "problem")  # an alias reads its entry's value
    with pytest.raises(UnknownNameError, match="Invalid optimizer"):
        default_lr("adamw2", digits)


def test_no_problem_table_is_an_empty_placeholder() -> None:
    for prob in (problems.get(n) for n in problems.names()):
        for table in (prob.lr, *prob.task_lr.values()):
            assert all(ravine.optim.info(k) and v > 0 for k, v in table.items())


def _linear_csv(path: Path, seed: int = 0, rows: int = 200) -> Path:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=rows), rng.normal(size=rows)
    path.write_text("a,b,y\n" + "".join(f"{x},{z},{x + 2 * z}\n" for x, z in zip(a, b, strict=True)))
    return path


def test_user_regression_defaults_do_not_blow_up(tmp_path: Path) -> None:
    """y = a + 2b, 200 rows: sgd 0.1 (the classification default) grew the loss 1.6 -> 424 in one epoch."""
    from ravine.train import fit

    data = _linear_csv(tmp_path / "lin.csv")
    opts = {"data": str(data), "target": "y"}
    spec = resolve_spec("csv", "sgd", problem_options=opts)
    assert spec.lr_source == "problem" and spec.lr < ravine.optim.info("sgd").train_lr
    for seed in (0, 1, 2):
        h = fit("csv", "sgd", epochs=5, seed=seed, problem_options=opts, tensorboard=False).history
        assert h.status == "ok"
        first = h.epochs.train_loss[0]
        assert max(h.epochs.train_loss) <= first  # every epoch at or below the untrained model's loss
        assert h.epochs.train_loss[-1] < 0.1 * first
    # classification on a user's file keeps the registry's steps
    assert default_lr("sgd", problems.get("csv"), task="classification")[0] == ravine.optim.info("sgd").train_lr


def test_csv_problem_classification_and_npz_regression(files: dict[str, Path]) -> None:
    c = problems.get("csv").build(seed=0, data=str(files["csv"]), target="kind")
    assert c.metric_name == "accuracy" and c.model(c.data.X_train).shape[1] == 2
    n = problems.get("npz").build(seed=0, data=str(files["npz"]))
    assert n.metric_name == "rmse" and n.residual_fn is not None
    assert abs(n.data.y_train.mean().item()) < 1e-5  # the target is standardized on train
