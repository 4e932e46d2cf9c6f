"""The names of the tensors a graph carries, shared by ``graphformer.nn`` and ``graphformer.data``.

A layer reads ``graph.ndata[name]`` / ``graph.edata[name]``; the data writes them under the
same names. Import the constant, never spell the string: a renamed field then breaks loudly.
"""

# Node data (graph.ndata)
FEAT = "feat"  #: input node features (floats) or codes (ints)
LABEL = "label"  #: node-level targets
LAP_PE = "lap_pe"  #: Laplacian eigenvector positional encoding, (N, k)
RWSE = "rwse"  #: random-walk structural encoding, (N, k)
SPD = "spd"  #: shortest-path distances to every node of the sample, (N, max nodes), -1 unreachable
VIRTUAL = "virtual"  #: True at the virtual nodes added by graphformer.graphs.add_virtual_nodes

# Edge data (graph.edata)
EDGE_FEAT = "feat"  #: input edge features (floats) or codes (ints)
HOPS = "hops"  #: the hop distance of a k-hop graph's edge
EDGE_KIND = "kind"  #: which graph of a union an edge came from (graphformer.graphs.EdgeKind)
