"""Errors raised by ravine.

Every bad input raises a :class:`RavineError` (a ``ValueError``) whose message is
one line naming the field and what is allowed; the command line turns it into
that line and exit code 2.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any


class RavineError(ValueError):
    """Base class for every bad-input error raised by ravine."""


class HyperparameterError(RavineError):
    """An optimizer or schedule hyperparameter is outside its allowed range."""


class UnknownNameError(RavineError):
    """A registry lookup (optimizer, schedule, problem, ...) found no such name."""


class ConfigError(RavineError):
    """A config file has an unknown key or a bad value."""


class DataError(RavineError):
    """Input data is missing, empty, non-numeric or otherwise unusable."""


class CheckpointError(RavineError):
    """A checkpoint is corrupt, foreign or incompatible."""


class DivergenceError(RavineError):
    """Training or an iterative solve produced NaN / inf, or blew up."""


class ClosureError(RavineError):
    """An optimizer's closure is missing or returned something unusable."""


def unknown_name(kind: str, name: str, known: Iterable[str],
                 error: type[RavineError] = UnknownNameError) -> RavineError:
    """Build the error for an unknown registry name: the known names, and the closest one when there is one.

    The suggestion comes from :func:`difflib.get_close_matches` on lower-cased names,
    so a wrong case (``misra1a``) or a typo (``sgdd``) points at the intended name.

    Example:
        >>> str(unknown_name("optimizer", "adamm", ["adam", "sgd"]))
        "Invalid optimizer: 'adamm' (did you mean 'adam'? allowed: adam, sgd)"
    """
    import difflib

    names = sorted(known)
    by_lower = {n.lower(): n for n in names}
    close = difflib.get_close_matches(str(name).lower(), list(by_lower), n=1, cutoff=0.6)
    hint = f"did you mean {by_lower[close[0]]!r}? " if close else ""
    return error(f"Invalid {kind}: {name!r} ({hint}allowed: {', '.join(names) or 'none'})")


def check_range(
    field: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
    error: type[RavineError] = HyperparameterError,
) -> float:
    """Check that ``value`` is a finite real number in the given interval.

    Returns the value as a float; raises ``error`` with a one-line message naming
    ``field`` and the allowed range otherwise.

    Example:
        >>> check_range("lr", 0.1, 0.0)
        0.1
        >>> check_range("momentum", 1.0, 0.0, 1.0, high_inclusive=False)
        Traceback (most recent call last):
        ...
        ravine.errors.HyperparameterError: Invalid momentum: 1.0 (allowed: 0 <= momentum < 1)
    """
    lo_sym = "<=" if low_inclusive else "<"
    hi_sym = "<=" if high_inclusive else "<"
    parts = []
    if low is not None:
        parts.append(f"{low:g} {lo_sym} ")
    parts.append(field)
    if high is not None:
        parts.append(f" {hi_sym} {high:g}")
    allowed = "".join(parts) if (low is not None or high is not None) else f"{field} a finite number"
    try:
        if isinstance(value, bool | str | bytes):  # float("1e-3") would pass, then break the arithmetic
            raise TypeError
        x = float(value)
    except (TypeError, ValueError):
        raise error(f"Invalid {field}: {value!r} (allowed: {allowed})") from None
    ok = math.isfinite(x)
    if ok and low is not None:
        ok = x >= low if low_inclusive else x > low
    if ok and high is not None:
        ok = x <= high if high_inclusive else x < high
    if not ok:
        raise error(f"Invalid {field}: {value!r} (allowed: {allowed})")
    return x


def check_int(field: str, value: Any, low: int | None = None, high: int | None = None,
              error: type[RavineError] = HyperparameterError) -> int:
    """Check that ``value`` is an integer in ``[low, high]``; return it.

    Example:
        >>> check_int("history_size", 10, 1)
        10
    """
    allowed = (f"integer >= {low}" if high is None else f"integer in [{low}, {high}]") if low is not None \
        else "integer"
    # Only real integers: a float such as 2.0 would pass a range check, then break range(max_iter).
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise error(f"Invalid {field}: {value!r} (allowed: {allowed})")
    v = int(value)
    if (low is not None and v < low) or (high is not None and v > high):
        raise error(f"Invalid {field}: {value!r} (allowed: {allowed})")
    return v
