"""The one-line bad-input messages of ``ravine.errors``: the field, the value, what is allowed."""

from __future__ import annotations

import pytest

from ravine import RavineError, UnknownNameError, optim, problems
from ravine.errors import unknown_name

KNOWN = ["Misra1a", "Misra1b", "adam", "sgd", "xavier-normal", "xavier-uniform"]


@pytest.mark.parametrize("name, suggestion", [
    ("sgdd", "sgd"),                # a typo
    ("misra1a", "Misra1a"),         # the wrong case
    ("xavier-normall", "xavier-normal"),
    ("adan", "adam"),
    ("cosine", None),               # nothing close: no guess
    ("", None),
])
def test_unknown_name_lists_the_allowed_names_and_suggests_only_a_close_one(name, suggestion):
    message = str(unknown_name("thing", name, reversed(KNOWN)))
    assert message.startswith(f"Invalid thing: {name!r} (")
    assert message.endswith(f"allowed: {', '.join(sorted(KNOWN))})")
    assert ("did you mean" in message) == (suggestion is not None)
    if suggestion is not None:
        assert f"did you mean {suggestion!r}? " in message
    assert "\n" not in message


def test_registries_raise_it_with_their_field_names():
    with pytest.raises(UnknownNameError, match=r"^Invalid optimizer: 'adamm' \(did you mean 'adam'\? allowed: "):
        optim.info("adamm")
    with pytest.raises(UnknownNameError, match=r"^Invalid problem: 'digits' \(did you mean 'digits-"):
        problems.get("digits")
    assert issubclass(UnknownNameError, RavineError)


def test_a_checkpoint_that_does_not_fit_names_the_weight_and_both_shapes():
    import torch

    from ravine.train.checkpoint import weights_mismatch

    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
    wider = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2))
    assert weights_mismatch(net, net.state_dict()) is None
    assert weights_mismatch(net, wider.state_dict()) == "its 0.weight has shape [5, 4], the model's [3, 4]"
    assert weights_mismatch(net, {k: v for k, v in net.state_dict().items() if k != "2.bias"}) == "it has no 2.bias"
    assert weights_mismatch(net, {**net.state_dict(), "3.weight": torch.zeros(1)}) == \
        "it has 3.weight, which the model lacks"
    assert weights_mismatch(net, None) == "it holds no model weights"
    with pytest.raises(RuntimeError, match="size mismatch for 0.weight"):  # torch agrees on the first difference
        net.load_state_dict(wider.state_dict())
