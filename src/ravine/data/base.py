"""The in-memory dataset record every loader returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ravine.errors import DataError

Task = Literal["classification", "regression"]


@dataclass
class Dataset:
    """Features and targets as NumPy arrays, before splitting and preprocessing.

    Attributes:
        name: a short name for listings and messages.
        X: features, shape ``(n, d)`` (images are flattened; see ``image_shape``).
        y: targets: class indices ``0..k-1`` (int64) for classification,
            floats of shape ``(n,)`` or ``(n, k)`` for regression.
        task: ``"classification"`` or ``"regression"``.
        feature_names: one name per column of ``X``, or None.
        class_names: the label of each class index (classification), or None.
        image_shape: ``(channels, height, width)`` when a row of ``X`` is an image.
        X_test: an official held-out test set (MNIST), or None to split one off.
        y_test: its targets.
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    task: Task
    feature_names: list[str] | None = None
    class_names: list[str] | None = None
    image_shape: tuple[int, int, int] | None = None
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None

    @property
    def n_classes(self) -> int:
        """Number of classes (0 for regression)."""
        if self.task != "classification":
            return 0
        labels = self.y if self.y_test is None else np.concatenate([self.y, self.y_test])
        return int(labels.max()) + 1 if labels.size else 0

    def check(self) -> Dataset:
        """Check shapes and finiteness; raise ``DataError`` naming the problem. Returns self."""
        for part, X, y in (("", self.X, self.y), ("test ", self.X_test, self.y_test)):
            if X is None:
                continue
            if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
                raise DataError(f"{self.name}: {part}features must be a non-empty 2-D array, got shape {X.shape}")
            if y is None or y.shape[0] != X.shape[0]:
                got = None if y is None else y.shape
                raise DataError(f"{self.name}: {part}targets shape {got} does not match {X.shape[0]} rows")
            if not np.isfinite(X).all():
                raise DataError(f"{self.name}: {part}features contain NaN or inf")
            if self.task == "regression" and not np.isfinite(y).all():
                raise DataError(f"{self.name}: {part}targets contain NaN or inf")
        return self
