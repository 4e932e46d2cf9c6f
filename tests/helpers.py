"""Shared helpers for the core-library tests: graph builders, dense references, weights.

Tests compare graphformer's message-passing layers with dense plain-torch references.
:func:`assert_close` asserts and records the largest absolute error per reference, which
``conftest.py`` prints at the end of the session.
"""

from __future__ import annotations

from collections.abc import Sequence

import graphformer  # noqa: F401  (installs the DGL hook before DGL is imported)

import dgl
import torch
from torch import nn

#: Largest absolute error measured against each named reference in this session.
ERRORS: dict[str, float] = {}


def assert_close(
    name: str, actual: torch.Tensor, expected: torch.Tensor, atol: float = 1e-5
) -> None:
    """Assert ``|actual - expected| <= atol`` elementwise and record the largest error."""
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape}"
    assert torch.isfinite(actual).all(), f"{name}: non-finite values in the output"
    error = (actual.detach() - expected.detach()).abs().max().item() if actual.numel() else 0.0
    ERRORS[name] = max(ERRORS.get(name, 0.0), error)
    assert error <= atol, f"{name}: max abs error {error:.3g} > {atol:.1g}"


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def offsets(sizes: Sequence[int] | torch.Tensor) -> torch.Tensor:
    """First global node index of each sample."""
    sizes = torch.as_tensor(sizes)
    return torch.cumsum(sizes, 0) - sizes


def sample_of_node(sizes: Sequence[int] | torch.Tensor) -> torch.Tensor:
    sizes = torch.as_tensor(sizes)
    return torch.repeat_interleave(torch.arange(len(sizes)), sizes)


def random_graph(
    sizes: Sequence[int], p: float = 0.4, self_loops: bool = False, seed: int = 0
) -> dgl.DGLGraph:
    """A batched random directed graph: edge j → i with probability ``p`` within a sample.

    No multi-edges; self-loops only if ``self_loops``. Edges are sorted by (src, dst), so
    each sample's edges are contiguous and ``batch_num_edges`` is set.
    """
    total = sum(sizes)
    sample = sample_of_node(sizes)
    same_sample = sample[:, None] == sample[None, :]
    adjacency = (torch.rand(total, total, generator=generator(seed)) < p) & same_sample
    if not self_loops:
        adjacency.fill_diagonal_(False)
    src, dst = adjacency.nonzero(as_tuple=True)
    graph = dgl.graph((src, dst), num_nodes=total)
    graph.set_batch_num_nodes(torch.as_tensor(sizes))
    graph.set_batch_num_edges(torch.bincount(sample[src], minlength=len(sizes)))
    return graph


def path_graph(num_nodes: int) -> dgl.DGLGraph:
    """An undirected path 0 - 1 - ... - (n-1), both directions (connected, for PEs)."""
    src = torch.arange(num_nodes - 1)
    return dgl.to_bidirected(dgl.graph((src, src + 1), num_nodes=num_nodes))


def edge_set(graph: dgl.DGLGraph) -> set[tuple[int, int]]:
    src, dst = graph.edges()
    return set(zip(src.tolist(), dst.tolist(), strict=True))


def dense_adjacency(graph: dgl.DGLGraph, weight: torch.Tensor | None = None) -> torch.Tensor:
    """(N, N) matrix with ``A[i, j]`` = weight of edge j → i (summed over multi-edges)."""
    src, dst = graph.edges()
    weight = torch.ones(graph.num_edges()) if weight is None else weight
    adjacency = torch.zeros(graph.num_nodes(), graph.num_nodes(), dtype=weight.dtype)
    return adjacency.index_put_((dst, src), weight, accumulate=True)


def dense_edge_tensor(graph: dgl.DGLGraph, value: torch.Tensor) -> torch.Tensor:
    """(N, N, ...) tensor with ``[i, j]`` = value of edge j → i (zeros where no edge)."""
    src, dst = graph.edges()
    dense = value.new_zeros(graph.num_nodes(), graph.num_nodes(), *value.shape[1:])
    dense[dst, src] = value
    return dense


def within_sample_permutation(sizes: Sequence[int], seed: int = 0) -> torch.Tensor:
    """A random node permutation that keeps every node inside its own sample."""
    gen = generator(seed)
    return torch.cat(
        [
            start + torch.randperm(size, generator=gen)
            for start, size in zip(offsets(sizes).tolist(), sizes, strict=True)
        ]
    )


def permute_nodes(
    graph: dgl.DGLGraph, perm: torch.Tensor, edge_perm: torch.Tensor | None = None
) -> dgl.DGLGraph:
    """Relabel nodes: new node ``n`` is old node ``perm[n]``. ndata/edata follow.

    ``edge_perm`` (new edge ``e`` is old edge ``edge_perm[e]``) also reorders edges; it
    must keep each sample's edges contiguous for batched graphs.
    """
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(len(perm))
    src, dst = graph.edges()
    edge_perm = torch.arange(graph.num_edges()) if edge_perm is None else edge_perm
    permuted = dgl.graph(
        (inverse[src[edge_perm]], inverse[dst[edge_perm]]), num_nodes=graph.num_nodes()
    )
    for key, value in graph.ndata.items():
        permuted.ndata[key] = value[perm]
    for key, value in graph.edata.items():
        permuted.edata[key] = value[edge_perm]
    permuted.set_batch_num_nodes(graph.batch_num_nodes())
    permuted.set_batch_num_edges(graph.batch_num_edges())
    return permuted


def with_distances(graph: dgl.DGLGraph) -> dgl.DGLGraph:
    """A copy of the batched ``graph`` carrying each sample's shortest-path distances as
    ``ndata['spd']`` (recomputed: call it after permuting nodes)."""
    from graphformer.data.features.distances import SPD, WithDistances, compute_distances

    samples = dgl.unbatch(graph)
    dataset = WithDistances(samples, compute_distances(samples))
    result = graph.local_var()
    result.ndata[SPD] = torch.cat([dataset[i].ndata[SPD] for i in range(len(dataset))])
    return result


def stand_in_positions(graph: dgl.DGLGraph) -> torch.Tensor:
    """(N, 3) float coordinates that follow the graph's structure (in-degree, out-degree and
    the summed out-degrees of in-neighbours, scaled), so that relabelling the nodes permutes
    them with the nodes: what a dataset's coordinates do under a node permutation."""
    with graph.local_scope():
        deg_in, deg_out = graph.in_degrees().float(), graph.out_degrees().float()
        graph.ndata["_d"] = deg_out
        graph.update_all(dgl.function.copy_u("_d", "_m"), dgl.function.sum("_m", "_s"))
        return 0.7 * torch.stack([deg_in, 0.5 * deg_out, 0.3 * graph.ndata["_s"]], dim=1)


#: Stand-ins for the node fields that datasets provide (``Field.provided_by``).
STAND_INS = {"pos": stand_in_positions}


def with_needs(graph: dgl.DGLGraph, module: nn.Module) -> dgl.DGLGraph:
    """``graph`` with the ``ndata`` fields that ``module`` (a mixer, block or model) lists
    in its ``needs`` and the graph lacks, each computed per sample by its registered Field
    (graphformer.fields); the registry-driven tests call it for every mixer. Fields the
    graph carries are kept (a test's encodings permuted with its nodes stay as they are)."""
    from graphformer.data.field_cache import WithFields, compute_field
    from graphformer.fields import get_field

    needs = [get_field(name) for name in module.needs]
    needs = [field for field in needs if field.key not in graph.ndata]
    if not needs:
        return graph
    provided = [field for field in needs if field.provided]
    if provided:  # fields a dataset would write (3D coordinates): a stand-in per node
        graph = graph.local_var()
        for field in provided:
            graph.ndata[field.key] = STAND_INS[field.name](graph)
    samples = dgl.unbatch(graph)
    dataset = WithFields(samples, {field.name: compute_field(field, samples) for field in needs})
    result = graph.local_var()
    for field in needs:
        rows = [dataset[i].ndata[field.key] for i in range(len(dataset))]
        result.ndata[field.key] = torch.cat(rows)
    return result


def randomize_biases(module: nn.Module, scale: float = 0.5, seed: int = 1) -> nn.Module:
    """Fill every bias with random values so that tests see whether biases are applied."""
    gen = generator(seed)
    with torch.no_grad():
        for name, param in module.named_parameters():
            if name.endswith("bias"):
                param.copy_((torch.rand(param.shape, generator=gen) * 2 - 1) * scale)
    return module


def copy_into_torch_mha(ours: nn.Module, theirs: nn.MultiheadAttention) -> None:
    """Copy a graphformer MultiHeadAttention's weights into ``torch.nn.MultiheadAttention``."""
    with torch.no_grad():
        projections = (ours.q_proj, ours.k_proj, ours.v_proj)
        if theirs._qkv_same_embed_dim:
            theirs.in_proj_weight.copy_(torch.cat([p.weight for p in projections]))
        else:
            theirs.q_proj_weight.copy_(ours.q_proj.weight)
            theirs.k_proj_weight.copy_(ours.k_proj.weight)
            theirs.v_proj_weight.copy_(ours.v_proj.weight)
        theirs.in_proj_bias.copy_(torch.cat([p.bias for p in projections]))
        theirs.out_proj.weight.copy_(ours.out_proj.weight)
        theirs.out_proj.bias.copy_(ours.out_proj.bias)


def pad(x: torch.Tensor, sizes: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, D) node rows → (B, L, D) zero-padded batch and (B, L) mask, True at padding."""
    length = max(sizes)
    padded = x.new_zeros(len(sizes), length, x.shape[1])
    mask = torch.ones(len(sizes), length, dtype=torch.bool)
    for b, (start, size) in enumerate(zip(offsets(sizes).tolist(), sizes, strict=True)):
        padded[b, :size] = x[start : start + size]
        mask[b, :size] = False
    return padded, mask


def unpad(padded: torch.Tensor, sizes: Sequence[int]) -> torch.Tensor:
    """(B, L, D) → (N, D): the valid rows of each sample, concatenated."""
    return torch.cat([padded[b, :size] for b, size in enumerate(sizes)])


def dense_attention_weights(
    graph: dgl.DGLGraph,
    weights: torch.Tensor,
    src_sizes: Sequence[int],
    dst_sizes: Sequence[int],
) -> torch.Tensor:
    """Per-edge weights (E, H) → dense (B, H, L_dst, L_src), zeros where no edge."""
    src, dst = graph.edges()
    sample = sample_of_node(dst_sizes)[dst]
    i = dst - offsets(dst_sizes)[sample]
    j = src - offsets(src_sizes)[sample]
    dense = weights.new_zeros(len(dst_sizes), weights.shape[1], max(dst_sizes), max(src_sizes))
    dense[sample, :, i, j] = weights
    return dense


def dense_sample_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    sizes: Sequence[int],
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """Exact softmax attention within each sample, a loop over samples: (N, H, D) scaled
    queries, keys, values → (N, H, D). ``bias``: optional (N, N, H), [i, j] added to the
    score of query i for key j."""
    outputs = []
    for start, n in zip(offsets(sizes).tolist(), sizes, strict=True):
        rows = slice(start, start + n)
        score = torch.einsum("ihd,jhd->hij", q[rows], k[rows])
        if bias is not None:
            score = score + bias[rows, rows].permute(2, 0, 1)
        outputs.append(torch.einsum("hij,jhd->ihd", torch.softmax(score, dim=-1), v[rows]))
    return torch.cat(outputs)


def tiny_cluster_data(root: str) -> dict:
    """A data config node (as graphformer-train composes one) for 6/3/3 generated CLUSTER
    graphs in batches of 3, cached under ``root``."""
    return {
        "_target_": "graphformer.data.GraphDataModule",
        "dataset": {"_target_": "graphformer.data.SBMDataset", "_partial_": True, "root": root},
        "batch_size": 3,
        "train_graphs": 6,
        "val_graphs": 3,
        "test_graphs": 3,
    }
