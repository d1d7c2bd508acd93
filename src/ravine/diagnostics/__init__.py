"""Diagnostics: what a training run's numbers say about it.

Example:
    >>> from ravine.diagnostics import diagnose_fit
    >>> diagnose_fit(train_error=0.01, val_error=0.15, reference_error=0.02, history=None).kind
    'overfitting (high variance)'
"""

from ravine.diagnostics.fit import KINDS, Diagnosis, diagnose_fit, plateau_improvement, tolerance

__all__ = ["KINDS", "Diagnosis", "diagnose_fit", "plateau_improvement", "tolerance"]
