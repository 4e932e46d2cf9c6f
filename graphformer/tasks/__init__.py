"""Lightning tasks: one loop (GraphTask), its objectives."""

from graphformer.tasks.base import GraphTask
from graphformer.tasks.classification import GraphClassification, NodeClassification
from graphformer.tasks.metrics import BenchmarkAccuracy
from graphformer.tasks.pose import MPJPE, PoseLifting
from graphformer.tasks.regression import GraphRegression, NodeRegression
from graphformer.tasks.seq2seq import SequenceToSequence

__all__ = [
    "MPJPE",
    "BenchmarkAccuracy",
    "GraphClassification",
    "GraphRegression",
    "GraphTask",
    "NodeClassification",
    "NodeRegression",
    "PoseLifting",
    "SequenceToSequence",
]
