"""Landscapes: 2-D test functions and optimizer paths over them, 1-D interpolation, 2-D planes.

Example:
    >>> from ravine import landscape
    >>> runs = landscape.trajectories("quadratic", ["gd", "newton"], steps=10)
    >>> runs["newton"].distance < 1e-6
    True
"""

from ravine.landscape.functions import TestFunction, get, names
from ravine.landscape.plane import (DIRECTIONS, Interpolation, LossGrid, Plane, as_params, filter_normalize,
                                    interpolate, parameters_of, pca_directions, plane, random_directions)
from ravine.landscape.trajectories import StationaryPoint, Trajectory, critical_points, run_optimizer, trajectories

__all__ = ["DIRECTIONS", "Interpolation", "LossGrid", "Plane", "StationaryPoint", "TestFunction", "Trajectory",
           "as_params", "critical_points", "filter_normalize", "get", "interpolate", "names", "parameters_of",
           "pca_directions", "plane", "random_directions", "run_optimizer", "trajectories"]
