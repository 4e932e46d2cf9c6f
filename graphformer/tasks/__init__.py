"""Lightning tasks: one loop (GraphTask), four objectives."""

from graphformer.tasks.base import GraphTask
from graphformer.tasks.classification import GraphClassification, NodeClassification
from graphformer.tasks.metrics import BenchmarkAccuracy
from graphformer.tasks.pose import MPJPE, PoseLifting
from graphformer.tasks.regression import GraphRegression, NodeRegression

__all__ = [
    "MPJPE",
    "BenchmarkAccuracy",
    "GraphClassification",
    "GraphRegression",
    "GraphTask",
    "NodeClassification",
    "NodeRegression",
    "PoseLifting",
]
