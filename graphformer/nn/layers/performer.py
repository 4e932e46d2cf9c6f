r"""Performer attention (FAVOR+, Choromanski et al., 2021): softmax attention over each
sample's nodes, approximated in time linear in the number of nodes.

Softmax attention weighs key :math:`j` for query :math:`i` by the kernel
:math:`\kappa(q_i, k_j) = \exp(q_i \cdot k_j)` (with :math:`q, k` scaled by
:math:`d^{-1/4}`, so that :math:`q_i \cdot k_j` is the usual :math:`q \cdot k / \sqrt{d}`).
FAVOR+ writes the kernel as an expectation over Gaussian vectors :math:`\omega \sim
\mathcal{N}(0, I_d)` of positive random features,

.. math::
    \kappa(q, k) = \mathbb{E}_\omega\big[\phi(q)^\top \phi(k)\big], \qquad
    \phi(x) = \tfrac{1}{\sqrt{m}} \exp\!\big(\Omega x - \tfrac{1}{2}\lVert x \rVert^2\big)
    \in \mathbb{R}^m_{>0},

with the :math:`m` rows of :math:`\Omega` drawn once (orthogonal to each other by
default, which keeps the estimate unbiased and lowers its variance). Attention over the
nodes :math:`S(i)` of node :math:`i`'s sample then factorises,

.. math::
    o_i = \frac{\phi(q_i)^\top \sum_{j \in S(i)} \phi(k_j)\, v_j^\top}
               {\phi(q_i)^\top \sum_{j \in S(i)} \phi(k_j)},

costing :math:`O(n m d)` per sample of :math:`n` nodes instead of :math:`O(n^2 d)`.
Each sample's sums are batched matrix products over its nodes padded to the largest
sample (:class:`graphformer.nn.core.linear_attention.SampleRows`), with no loop over
samples. Padding keeps memory at :math:`O(B L H (m + d))` for :math:`B` samples of at most :math:`L`
nodes; a segment sum by ``index_add`` would materialise every node's
:math:`m \times d` outer product :math:`\phi(k_j) v_j^\top`, :math:`O(N H m d)`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from graphformer.nn.core.checks import check_divisible, check_node_features, check_positive
from graphformer.nn.core.linear_attention import SampleRows
from graphformer.nn.mixers import Mixer, Sizes, register

import dgl
import torch
from torch import nn

if TYPE_CHECKING:
    from graphformer.nn.config import BlockConfig


def gaussian_features(
    num_features: int,
    dim: int,
    orthogonal: bool = True,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    r"""The (num_features, dim) matrix :math:`\Omega` of FAVOR+'s random features.

    Each row is marginally :math:`\mathcal{N}(0, I_{dim})`. With ``orthogonal=True`` the
    rows come in blocks of ``dim`` exactly orthogonal directions (Haar-random, from the
    QR decomposition of a Gaussian matrix with the signs of :math:`R`'s diagonal) whose
    lengths are drawn independently as the norms of Gaussian vectors (χ with ``dim``
    degrees of freedom), Choromanski et al.'s ORF; with ``False`` they are i.i.d.
    """
    check_positive(num_features=num_features, dim=dim)
    if not orthogonal:
        return torch.randn(num_features, dim, generator=generator, dtype=dtype)
    blocks = math.ceil(num_features / dim)
    gaussian = torch.randn(blocks, dim, dim, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(gaussian)
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)
    directions = q.transpose(-2, -1).reshape(-1, dim)[:num_features]  # orthonormal rows
    lengths = torch.randn(num_features, dim, generator=generator, dtype=torch.float64).norm(dim=1)
    return (directions * lengths.unsqueeze(1)).to(dtype)


def feature_logits(x: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
    r""":math:`\Omega x - \lVert x \rVert^2 / 2` for ``x`` (..., d) and ``omega`` (m, d):
    (..., m), the exponents of FAVOR+'s positive features."""
    return x @ omega.T - 0.5 * x.square().sum(-1, keepdim=True)


def positive_random_features(x: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
    r"""FAVOR+'s positive features :math:`\phi(x) = \exp(\Omega x - \lVert x \rVert^2/2)
    / \sqrt{m}` of ``x`` (..., d), for ``omega`` (m, d) with rows drawn from
    :math:`\mathcal{N}(0, I_d)`: :math:`\mathbb{E}[\phi(q)^\top\phi(k)] = \exp(q \cdot k)`.
    Returns (..., m). (:class:`PerformerAttention` subtracts constants from the exponents
    first, which cancel in attention's ratio, so that ``exp`` cannot overflow.)
    """
    return torch.exp(feature_logits(x, omega)) / math.sqrt(omega.shape[0])


@register("performer")
class PerformerAttention(Mixer):
    r"""Multi-head Performer (FAVOR+) self-attention among the nodes of each sample.

    The global mixer ``performer``: for every node :math:`i`, an estimate of softmax
    attention over all nodes of its sample (``graph.batch_num_nodes()``), whatever the
    graph's edges. Per
    head :math:`h` of width :math:`d`, with :math:`[q; k; v] = W_{in} x` (``in_proj``) and
    shared random features :math:`\Omega \in \mathbb{R}^{m \times
    d}`,

    .. math::
        o^h_i = \frac{\phi(q^h_i)^\top \sum_{j \in S(i)} \phi(k^h_j) (v^h_j)^\top}
                     {\phi(q^h_i)^\top \sum_{j \in S(i)} \phi(k^h_j)}, \qquad
        \text{output}_i = W_O \big\Vert_h o^h_i,

    a ratio of unbiased estimates of the softmax kernel :math:`\exp(q_i \cdot k_j /
    \sqrt{d})` that approximates :math:`\mathrm{softmax}_j` attention with an error
    shrinking as :math:`1/\sqrt{m}` (measured in ``tests/nn/test_performer.py``).
    Exponents are stabilised by subtracting each query's largest logit and each (sample,
    head)'s largest key logit, constants that cancel in the ratio. A 1-node sample
    outputs :math:`W_O v` exactly.

    Parameters
    ----------
    dim : width of the input and output; split over ``num_heads``.
    num_heads : number of heads; must divide ``dim``.
    num_features : random features :math:`m` per head; default :math:`\lceil d \ln d
        \rceil` (at least :math:`d`), as in the Performer paper and ``performer-pytorch``.
    orthogonal : orthogonal random features (default) or i.i.d. Gaussian ones.
    bias : biases on ``in_proj`` and ``out_proj``.
    redraw_interval : in training, draw fresh features every this many forward calls
        (the Performer authors redraw periodically); 0 (default) keeps them fixed. The
        features are a buffer, saved in ``state_dict``; :meth:`redraw_features` draws anew.
    check_finite : raise on NaN/inf input features.

    >>> import dgl, torch
    >>> from graphformer.nn import PerformerAttention
    >>> graph = dgl.batch([dgl.graph(([0], [1])), dgl.graph(([0, 1], [1, 2]))])
    >>> PerformerAttention(8, 2)(graph, torch.randn(5, 8)).shape
    torch.Size([5, 8])
    """

    scope = "global"

    def __init__(
        self,
        dim: int,
        num_heads: int,
        num_features: int | None = None,
        orthogonal: bool = True,
        bias: bool = True,
        redraw_interval: int = 0,
        check_finite: bool = True,
    ) -> None:
        super().__init__()
        check_divisible(dim, num_heads)
        self.dim, self.num_heads = dim, num_heads
        self.head_dim = dim // num_heads
        if num_features is None:
            num_features = max(self.head_dim, math.ceil(self.head_dim * math.log(self.head_dim)))
        check_positive(num_features=num_features)
        if isinstance(redraw_interval, bool) or not isinstance(redraw_interval, int):
            raise ValueError(f"redraw_interval must be an int ≥ 0; got {redraw_interval!r}")
        if redraw_interval < 0:
            raise ValueError(f"redraw_interval must be an int ≥ 0; got {redraw_interval}")
        self.num_features, self.orthogonal = num_features, orthogonal
        self.redraw_interval, self.check_finite = redraw_interval, check_finite
        self.calls = 0
        # Queries, keys and values from one (3 · dim, dim) projection, as
        # nn.MultiheadAttention's in_proj: one matrix product instead of three.
        self.in_proj = nn.Linear(dim, 3 * dim, bias=bias)
        self.out_proj = nn.Linear(dim, dim, bias=bias)
        self.register_buffer("features", torch.empty(num_features, self.head_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform ``in_proj`` (over the whole matrix, as ``nn.MultiheadAttention``)
        and ``out_proj``, zero biases, fresh random features."""
        nn.init.xavier_uniform_(self.in_proj.weight)
        nn.init.xavier_uniform_(self.out_proj.weight)
        if self.in_proj.bias is not None:
            nn.init.zeros_(self.in_proj.bias)
            nn.init.zeros_(self.out_proj.bias)
        self.redraw_features()

    @classmethod
    def build(cls, config: BlockConfig, sizes: Sizes) -> Mixer:
        """``config.dim`` wide; ``sizes`` unused."""
        return cls(config.dim, config.num_heads, check_finite=False)

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(N, dim) → queries, keys, values (N, num_heads, head_dim), unscaled."""
        shape = (-1, self.num_heads, self.head_dim)
        return tuple(part.reshape(shape) for part in self.in_proj(x).chunk(3, dim=-1))

    @torch.no_grad()
    def redraw_features(self, generator: torch.Generator | None = None) -> None:
        """Draw new random features :math:`\\Omega` (from ``generator``, else torch's RNG)."""
        omega = gaussian_features(
            self.num_features, self.head_dim, self.orthogonal, generator, self.features.dtype
        )
        self.features.copy_(omega)

    def forward(self, graph: dgl.DGLGraph, x: torch.Tensor) -> torch.Tensor:
        """``x``: (N, dim), nodes ordered sample by sample as in ``graph``. Returns
        (N, dim)."""
        check_node_features("x", x, graph.num_nodes(), self.dim, self.check_finite)
        if self.training and self.redraw_interval:
            if self.calls and self.calls % self.redraw_interval == 0:
                self.redraw_features()
            self.calls += 1
        q, k, v = self.project(x)
        scale = self.head_dim**-0.25
        out = self.attend(q * scale, k * scale, v, graph.batch_num_nodes())
        return self.out_proj(out.reshape(-1, self.dim))

    def attend(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, sizes: torch.Tensor
    ) -> torch.Tensor:
        """FAVOR+ per sample on scaled (N, H, D) queries/keys and values; (N, H, D) out."""
        if q.shape[0] == 0:
            return torch.zeros_like(v)
        rows = SampleRows(sizes.to(q.device))
        omega = self.features.to(q.dtype)
        # Subtract each (sample, head)'s largest key exponent and each query's largest
        # exponent: constants over a sample's keys and over a query's features, they cancel
        # in the ratio below (as does the 1/sqrt(m) of the features, left out).
        key_logits = feature_logits(k, omega)  # (N, H, m)
        key_max = key_logits.detach().amax(-1)
        stabilizer = key_max.new_full((len(sizes), self.num_heads), float("-inf"))
        index = rows.sample.unsqueeze(1).expand_as(key_max)
        stabilizer = stabilizer.scatter_reduce(0, index, key_max, "amax", include_self=True)
        phi_k = torch.exp(key_logits - rows.per_row(stabilizer).unsqueeze(-1))
        query_logits = feature_logits(q, omega)
        phi_q = torch.exp(query_logits - query_logits.detach().amax(-1, keepdim=True))
        phi_k, phi_q = rows.pad(phi_k), rows.pad(phi_q)
        key_value = phi_k.transpose(2, 3) @ rows.pad(v)  # (B, H, m, D)
        numerator = phi_q @ key_value  # (B, H, L, D)
        denominator = phi_q @ phi_k.sum(2, keepdim=True).transpose(2, 3)  # (B, H, L, 1)
        out = numerator / denominator.clamp_min(torch.finfo(q.dtype).tiny)
        return rows.unpad(out)
