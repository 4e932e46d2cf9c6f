"""Input encoders: node/edge features and positional/structural encodings → hidden width.

The encodings themselves are computed once per graph by DGL's transforms
(:func:`graphformer.data.pe_transform`, wrapping ``dgl.lap_pe`` and
``dgl.random_walk_pe``); the encoders here only embed them, and ask the data for them
through the field handshake (:mod:`graphformer.fields`): an encoder of width ``k`` lists
the field ``"<field>_k<k>"`` (``"lap_pe_k8"``) in its ``needs``.
"""

from __future__ import annotations

from graphformer.fields import LAP_PE, RWSE, width_field_name
from graphformer.nn.core.checks import check_node_features, check_positive

import dgl
import torch
from torch import nn


class CategoricalEncoder(nn.Module):
    r"""Sum of embeddings of integer categories: :math:`h_i = \sum_c E[x_{ic}]`.

    Input (N,) or (N, C) integer codes in ``[0, num_categories)``; all columns share one
    vocabulary. Output (N, dim).

    >>> import torch
    >>> from graphformer.nn import CategoricalEncoder
    >>> CategoricalEncoder(5, 8)(torch.tensor([[0, 4], [3, 1]])).shape  # two columns, summed
    torch.Size([2, 8])
    """

    def __init__(self, num_categories: int, dim: int) -> None:
        super().__init__()
        check_positive(num_categories=num_categories, dim=dim)
        self.num_categories, self.dim = num_categories, dim
        self.embedding = nn.Embedding(num_categories, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_floating_point() or x.dtype == torch.bool:
            raise ValueError(
                f"CategoricalEncoder needs integer category codes; got dtype {x.dtype}. "
                "Use LinearEncoder (in_dim=...) for continuous features."
            )
        if x.numel() and (x.min() < 0 or x.max() >= self.num_categories):
            raise ValueError(
                f"category codes must lie in [0, {self.num_categories}); got values in "
                f"[{int(x.min())}, {int(x.max())}]. Raise num_categories to cover them."
            )
        h = self.embedding(x)
        return h.sum(dim=1) if x.dim() == 2 else h


class LinearEncoder(nn.Module):
    r"""Affine map of continuous features, :math:`h = W x + b`, with input checks.

    >>> import torch
    >>> from graphformer.nn import LinearEncoder
    >>> LinearEncoder(3, 8)(torch.randn(4, 3)).shape
    torch.Size([4, 8])
    """

    def __init__(self, in_dim: int, dim: int, check_finite: bool = True) -> None:
        super().__init__()
        check_positive(in_dim=in_dim, dim=dim)
        self.in_dim, self.check_finite = in_dim, check_finite
        self.linear = nn.Linear(in_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 1 and self.in_dim == 1 and x.is_floating_point():
            x = x.unsqueeze(1)
        dtype = self.linear.weight.dtype
        check_node_features("features", x, x.shape[0], self.in_dim, self.check_finite, dtype)
        return self.linear(x)


class NodeEncodingProjection(nn.Module):
    """:math:`h = W e`: a linear map of a precomputed (N, k) node encoding, stored in
    ``graph.ndata[field]`` (:func:`graphformer.data.pe_transform`), checked for its shape,
    dtype and values. :class:`LapPEEncoder` and :class:`RWSEEncoder` are its two uses; a new
    encoding names its field:

    >>> import dgl, torch
    >>> from graphformer.nn import NodeEncodingProjection
    >>> class DegreeEncoder(NodeEncodingProjection):
    ...     field = "degree_pe"
    >>> graph = dgl.graph(([0, 1, 2], [1, 2, 0]))
    >>> DegreeEncoder(1, 8)(graph, torch.ones(3, 1)).shape
    torch.Size([3, 8])
    """

    #: The ``ndata`` field the encoding comes from (named in messages).
    field: str

    def __init__(self, k: int, dim: int, check_finite: bool = True) -> None:
        super().__init__()
        check_positive(k=k, dim=dim)
        self.k, self.check_finite = k, check_finite
        self.linear = nn.Linear(k, dim)

    @property
    def needs(self) -> tuple[str, ...]:
        """The field of width ``k`` the data must attach: ``("<field>_k<k>",)``, a family
        registered by the data (:func:`graphformer.fields.register_family`)."""
        return (width_field_name(self.field, self.k),)

    def forward(self, graph: dgl.DGLGraph, encoding: torch.Tensor) -> torch.Tensor:
        dtype = self.linear.weight.dtype
        n = graph.num_nodes()
        check_node_features(self.field, encoding, n, self.k, self.check_finite, dtype)
        return self.linear(self.prepare(graph, encoding))

    def prepare(self, graph: dgl.DGLGraph, encoding: torch.Tensor) -> torch.Tensor:
        """The encoding as the linear map sees it (unchanged here)."""
        return encoding


class LapPEEncoder(NodeEncodingProjection):
    r"""Laplacian eigenvector PE (Dwivedi & Bresson, 2020): :math:`h = W (s \odot U_{:k})`.

    Eigenvectors are defined up to sign, so in training each graph draws a random sign
    :math:`s \in \{\pm 1\}^k` per eigenvector. Input (N, k) from
    :func:`graphformer.data.pe_transform`.

    >>> import dgl, torch
    >>> from graphformer.nn import LapPEEncoder
    >>> graph = dgl.graph(([0, 1, 2], [1, 2, 0]))
    >>> LapPEEncoder(2, 8).eval()(graph, torch.randn(3, 2)).shape
    torch.Size([3, 8])
    """

    field = LAP_PE

    def prepare(self, graph: dgl.DGLGraph, pe: torch.Tensor) -> torch.Tensor:
        """In training, each graph's eigenvectors with a random sign each."""
        if not self.training:
            return pe
        sizes = graph.batch_num_nodes().to(pe.device)
        signs = torch.randint(0, 2, (len(sizes), self.k), device=pe.device) * 2 - 1
        return pe * signs.to(pe.dtype).repeat_interleave(sizes, dim=0, output_size=len(pe))


class RWSEEncoder(NodeEncodingProjection):
    r"""Random-walk structural encoding (Dwivedi et al., 2022): :math:`h = W p_i`, with
    :math:`p_i = (RW_{ii}, RW^2_{ii}, \dots, RW^k_{ii})`. Input (N, k) from
    :func:`graphformer.data.pe_transform`.

    >>> import dgl, torch
    >>> from graphformer.nn import RWSEEncoder
    >>> graph = dgl.graph(([0, 1, 2], [1, 2, 0]))
    >>> RWSEEncoder(3, 8)(graph, torch.rand(3, 3)).shape
    torch.Size([3, 8])
    """

    field = RWSE
