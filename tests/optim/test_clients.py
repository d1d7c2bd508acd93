"""Real framework clients drive every registered optimizer: Lightning's automatic optimization and
skorch's training step. Where the method's maths needs another closure (the loss with its graph,
or the residual vector), the error is a ClosureError that says what to do."""

from __future__ import annotations

import pickle
import warnings

import pytest
import torch

import ravine.optim
from ravine.errors import ClosureError

pytestmark = pytest.mark.clients

# The methods whose step cannot be computed from a closure that calls backward() on a scalar loss
NEEDS_OWN_CLOSURE = {"newton": "manual optimization", "newton-cg": "manual optimization",
                     "gauss-newton": "residual closure", "levenberg": "residual closure",
                     "levenberg-marquardt": "residual closure"}


def _data():
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(32, 3, generator=gen)
    return X, X @ torch.tensor([1.0, -2.0, 0.5]) + 0.1


def _full_loss(net, X, y):
    with torch.no_grad():
        return float(torch.nn.functional.mse_loss(net(X).squeeze(-1), y))


@pytest.mark.parametrize("name", ravine.optim.names())
def test_lightning_automatic_optimization(name, tmp_path, monkeypatch):
    import lightning as L

    monkeypatch.chdir(tmp_path)  # anything Lightning writes stays in the temporary folder
    X, y = _data()

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.net = torch.nn.Linear(3, 1)

        def training_step(self, batch, _):
            x, t = batch
            return torch.nn.functional.mse_loss(self.net(x).squeeze(-1), t)

        def configure_optimizers(self):
            return ravine.optim.create(name, self.parameters())

        def train_dataloader(self):
            return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=32)

    module = Module()
    start = _full_loss(module.net, X, y)
    trainer = L.Trainer(max_steps=5, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path, accelerator="cpu", devices=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name in NEEDS_OWN_CLOSURE:
            with pytest.raises(ClosureError, match=NEEDS_OWN_CLOSURE[name]):
                trainer.fit(module)
            return
        trainer.fit(module)
    assert _full_loss(module.net, X, y) < start
    assert not any(p.name in ("lightning_logs", "checkpoints") for p in tmp_path.iterdir())


@pytest.mark.parametrize("name", ravine.optim.names())
def test_skorch_train_step_and_pickling(name):
    from skorch import NeuralNetRegressor

    X, y = _data()
    y = y.unsqueeze(1)
    cls = type(ravine.optim.create(name, [torch.nn.Parameter(torch.ones(1))]))
    torch.manual_seed(0)
    net = NeuralNetRegressor(torch.nn.Linear(3, 1), optimizer=cls, lr=ravine.optim.info(name).defaults["lr"],
                             max_epochs=3, batch_size=-1, train_split=None, verbose=0)
    if name in NEEDS_OWN_CLOSURE:
        with pytest.raises(ClosureError, match="skorch"):
            net.fit(X, y)
        return
    net.fit(X, y)
    losses = net.history[:, "train_loss"]
    assert losses[-1] < losses[0]
    clone = pickle.loads(pickle.dumps(net))  # skorch pickles the optimizer with the net
    clone.partial_fit(X, y)
    assert clone.history[-1, "train_loss"] <= losses[-1] * 1.5
