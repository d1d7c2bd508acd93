"""Benchmark suites run by ``ravine bench NAME``.

Each suite is a module with a ``run(...)`` function returning a JSON-friendly
dict; :data:`SUITES` maps the command-line name to that module's path.

Example:
    >>> sorted(SUITES)
    ['nist']
"""

from __future__ import annotations

SUITES: dict[str, str] = {"nist": "ravine.bench.nist"}

__all__ = ["SUITES"]
