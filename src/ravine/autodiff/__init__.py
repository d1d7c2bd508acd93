"""Gradient checks per tensor, the backward graph with gradient flow, and the course's worked examples.

Example:
    >>> import torch
    >>> from ravine import autodiff
    >>> net = torch.nn.Linear(2, 1)
    >>> autodiff.gradcheck(net, torch.nn.functional.mse_loss, (torch.randn(4, 2), torch.randn(4, 1))).passed
    True
"""

from ravine.autodiff.examples import course_example, sigmoid_example
from ravine.autodiff.gradcheck import GradcheckResult, TensorCheck, gradcheck, gradcheck_function
from ravine.autodiff.graph import BackwardGraph, Edge, Node, graph

__all__ = ["BackwardGraph", "Edge", "GradcheckResult", "Node", "TensorCheck", "course_example", "gradcheck",
           "gradcheck_function", "graph", "sigmoid_example"]
