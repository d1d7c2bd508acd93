"""Diagnostics: what a training run's curves and its layers say about it.

- :mod:`ravine.diagnostics.curves` — the learning-curve diagnosis (diverging,
  oscillating, plateau, too slow, underfitting, overfitting, healthy), a pure
  function of the curves;
- :mod:`ravine.diagnostics.instruments` — trainer callbacks with forward /
  backward hooks (activations, dead and saturated units, gradient norms,
  update ratios, symmetry);
- :mod:`ravine.diagnostics.noise` — per-sample gradients, Var ∝ 1/S, B_simple;
- :mod:`ravine.diagnostics.run` — ``ravine diagnose``.

Example:
    >>> from ravine.diagnostics import diagnose_curves
    >>> diagnose_curves([0, 1, 2], [2.0, 1.0, 0.5], [2.0, 1.0, 0.6])[0].kind
    'healthy'
"""

from ravine.diagnostics.curves import Finding, diagnose_curves, diagnose_history

__all__ = ["Finding", "diagnose_curves", "diagnose_history"]
