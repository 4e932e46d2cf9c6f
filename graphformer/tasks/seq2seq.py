r"""Sequence to sequence: token cross-entropy, token and sequence accuracy, greedy decoding.

A batch is ``(graph, targets)``: the source sequences as a batched graph (one node per
token, ``ndata['feat']`` the ids, :mod:`graphformer.data.datasets.sequences`) and the targets
(B, L), each ending with ``eos`` and right-padded with ``pad``. With :math:`y_{b,t}` the
target tokens and :math:`T_b` their number (``eos`` included),

.. math::
    \mathcal{L} = -\frac{1}{\sum_b T_b} \sum_b \sum_{t < T_b}
        \log p(y_{b,t} \mid y_{b,<t}, x_b), \qquad
    \mathrm{seq\_acc} = \frac{1}{B} \sum_b [\hat y_{b,t} = y_{b,t}\ \forall t < T_b].

Training and validation use teacher forcing (the decoder reads ``bos`` and the target
shifted right). Testing decodes greedily for ``L`` steps, feeding back its own tokens;
``test/loss`` is the cross-entropy along that greedy path. A sequence is right under
teacher forcing exactly when greedy decoding reproduces it, so ``seq_acc`` means the same
in both; ``token_acc`` under teacher forcing is per-token given a correct prefix.
"""

from __future__ import annotations

from graphformer.data.datasets.sequences import BOS, PAD
from graphformer.tasks.base import GraphTask

import dgl
import torch
import torch.nn.functional as F
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassExactMatch


class SequenceToSequence(GraphTask):
    """Trains a :class:`~graphformer.nn.Seq2SeqTransformer`-like model:
    ``model(src, src_sizes, tgt, tgt_sizes) -> (N_tgt, num_classes)`` logits and
    ``model.generate(src, src_sizes, max_len, bos) -> (tokens, logits)``.

    Metrics: ``token_acc`` (micro accuracy over target tokens) and ``seq_acc`` (exact match
    of whole sequences), both ignoring ``pad``.

    Parameters
    ----------
    model, optimizer, scheduler, scheduler_monitor, on_nonfinite : see
        :class:`~graphformer.tasks.GraphTask`.
    num_classes : target vocabulary size (``pad``, ``bos`` and the end token included).
    pad, bos : the padding and start token ids of the targets (padding only after the end
        of a target: a pad before a token is refused).
    """

    level = "graph"

    def __init__(self, *args, num_classes: int, pad: int = PAD, bos: int = BOS, **kwargs):
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an int ≥ 2; got {num_classes!r}")
        for name, value in (("pad", pad), ("bos", bos)):
            if not 0 <= value < num_classes:
                raise ValueError(f"{name}={value} must be a token id in [0, {num_classes})")
        self.num_classes, self.pad, self.bos = num_classes, pad, bos
        super().__init__(*args, **kwargs)

    def metrics(self) -> MetricCollection:
        kwargs = {"num_classes": self.num_classes, "ignore_index": self.pad}
        return MetricCollection(
            {
                "token_acc": MulticlassAccuracy(**kwargs, average="micro"),
                "seq_acc": MulticlassExactMatch(**kwargs),
            }
        )

    def _source(self, graph: dgl.DGLGraph) -> tuple[torch.Tensor, torch.Tensor]:
        return graph.ndata["feat"].to(self.device), graph.batch_num_nodes()

    def forward(self, graph: dgl.DGLGraph, max_len: int) -> torch.Tensor:
        """Greedy decoding of ``max_len`` tokens per source sequence: (B, max_len) ids."""
        return self.model.generate(*self._source(graph), max_len, self.bos)[0]

    def example_input(self, graph: dgl.DGLGraph, labels: torch.Tensor) -> tuple:
        return (graph, labels.shape[1])

    def outputs(self, graph: dgl.DGLGraph, labels: torch.Tensor, stage: str) -> torch.Tensor:
        """Logits (B, L, num_classes): teacher-forced, or greedy when testing."""
        src, src_sizes = self._source(graph)
        if stage == "test":
            return self.model.generate(src, src_sizes, labels.shape[1], self.bos)[1]
        valid = labels != self.pad
        gaps = valid[:, 1:] & ~valid[:, :-1]  # a valid token after a pad
        if bool(gaps.any()):
            sample, position = (int(i) for i in torch.nonzero(gaps)[0])
            raise ValueError(
                f"PAD (id {self.pad}) in the middle of target {sample} (at position "
                f"{int(torch.nonzero(~valid[sample])[0])}, before a token at position "
                f"{position + 1}): teacher forcing drops pads, so the inputs after it would "
                "shift by one. Pad only after the end of each target (pad=, the dataset's "
                "padding), or give the token another id"
            )
        start = labels.new_full((len(labels), 1), self.bos)
        inputs = torch.cat([start, labels[:, :-1]], dim=1)[valid]
        logits = self.model(src, src_sizes, inputs, valid.sum(1).cpu())
        padded = logits.new_zeros(*labels.shape, logits.shape[-1])
        padded[valid] = logits
        return padded

    def loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if target.numel() and (target.min() < 0 or target.max() >= self.num_classes):
            raise ValueError(
                f"target tokens must lie in [0, {self.num_classes}) for num_classes="
                f"{self.num_classes}; got values in [{int(target.min())}, {int(target.max())}]"
            )
        return F.cross_entropy(out.transpose(1, 2), target, ignore_index=self.pad)

    def metric_inputs(self, out: torch.Tensor, target: torch.Tensor):
        return out.argmax(dim=-1), target
