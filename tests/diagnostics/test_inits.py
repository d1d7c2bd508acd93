"""The course's five initializations by name: their formulas, checked on large matrices."""

from __future__ import annotations

import math

import pytest
import torch

from ravine.errors import UnknownNameError
from ravine.models import COURSE_INITS, INITS, init_weight_


def _filled(name: str, n_out: int = 400, n_in: int = 300) -> torch.Tensor:
    return init_weight_(torch.empty(n_out, n_in), name, torch.Generator().manual_seed(0))


def test_the_course_lists_five_known_inits() -> None:
    assert len(COURSE_INITS) == 5 and all(name in INITS for name in COURSE_INITS)


@pytest.mark.parametrize(("name", "std"), [("small-normal", 0.01), ("xavier-normal", math.sqrt(1 / 300)),
                                           ("he-normal", math.sqrt(2 / 300)), ("he", math.sqrt(2 / 300)),
                                           ("xavier-uniform", math.sqrt(6 / 700) / math.sqrt(3))])
def test_random_inits_have_the_course_std(name: str, std: float) -> None:
    w = _filled(name)
    assert float(w.mean()) == pytest.approx(0.0, abs=4 * std / math.sqrt(w.numel()))
    assert float(w.std()) == pytest.approx(std, rel=0.02)


def test_xavier_uniform_stays_inside_its_bound() -> None:
    w = _filled("xavier-uniform")
    bound = math.sqrt(6 / (300 + 400))
    assert float(w.abs().max()) <= bound and float(w.abs().max()) > 0.99 * bound


def test_constant_inits() -> None:
    assert torch.equal(_filled("constant"), torch.full((400, 300), 1 / 300))
    assert torch.equal(_filled("constant:0.25"), torch.full((400, 300), 0.25))
    assert torch.equal(_filled("zeros"), torch.zeros(400, 300))


@pytest.mark.parametrize("bad", ["constant:", "constant:x", "constant:inf", "normal"])
def test_unknown_inits_are_refused_with_the_list(bad: str) -> None:
    with pytest.raises(UnknownNameError, match="constant:<value>"):
        _filled(bad)
