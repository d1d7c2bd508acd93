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
