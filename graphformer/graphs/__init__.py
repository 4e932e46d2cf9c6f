"""Attention graphs: which graph a layer passes messages on decides what attention it is.

- :func:`complete_graph` of each sample: Transformer self-attention.
- :func:`causal_graph` of each sample (j → i for j ≤ i): masked (decoder) self-attention.
- :func:`complete_bipartite` from keys/values to queries: cross-attention, e.g. from an
  encoder's tokens to a decoder's, each pair of its own lengths.
- :func:`add_self_loops` on the input graph: GAT-style neighbourhood attention.
- :func:`khop_graph`: attention over each node's k-hop neighbourhood.
- Exphormer's graph: :func:`union_graphs` of the input graph and an
  :func:`expander_graph`, then :func:`add_virtual_nodes`; edges tagged by kind.

Graphs derived from a batch (its self-loop graph in :func:`add_self_loops`, its complete
graph in :func:`complete_graph_of`) are built once per graph object and reused by every
layer and block that asks (:func:`derived`), so no layer rebuilds them per call.

Every builder is vectorised (no Python loop over edges or samples) and returns a graph
whose ``batch_num_nodes`` / ``batch_num_edges`` describe its samples, so DGL readouts and
``dgl.unbatch`` keep working.
"""

from graphformer.graphs.batch import (
    Counts,
    check_homogeneous,
    derived,
    sample_sizes,
    to_device,
)
from graphformer.graphs.expander import (
    EdgeKind,
    add_virtual_nodes,
    expander_graph,
    khop_graph,
    union_graphs,
)
from graphformer.graphs.transformer import (
    BIPARTITE_ETYPE,
    add_self_loops,
    add_self_loops_with_features,
    causal_graph,
    complete_bipartite,
    complete_graph,
    complete_graph_of,
    is_complete,
)

__all__ = [
    "BIPARTITE_ETYPE",
    "Counts",
    "EdgeKind",
    "add_self_loops",
    "add_self_loops_with_features",
    "add_virtual_nodes",
    "causal_graph",
    "check_homogeneous",
    "complete_bipartite",
    "complete_graph",
    "complete_graph_of",
    "derived",
    "expander_graph",
    "is_complete",
    "khop_graph",
    "sample_sizes",
    "to_device",
    "union_graphs",
]
