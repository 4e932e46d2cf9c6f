"""The names of the tensors a graph carries, and how the data computes the derived ones.

Shared by ``graphformer.nn`` and ``graphformer.data``. A layer reads ``graph.ndata[name]`` /
``graph.edata[name]``; the data writes them under the same names. Import the constant,
never spell the string: a renamed field then breaks loudly.

**The data handshake.** A mixer (or encoder) lists the node fields it reads besides the
features in its ``needs`` (e.g. ``("spd",)``, or ``("lap_pe_k8",)`` for a LapPE encoder of
width 8); the model gathers them in ``model.needs``;
``graphformer-train`` passes them to the data module (``GraphDataModule(fields=...)``),
which computes each one once per split with its :class:`Field`'s ``compute``, caches it
beside the dataset and batches it. A mixer that needs a new field therefore adds one
:func:`register_field` call next to its own code; nothing in ``graphformer.data``,
``graphformer.cli`` or the models changes.

**Fields with a width.** An encoding computed at a chosen width ``k`` (LapPE's eigenvectors,
RWSE's walk lengths) is a *family*: :func:`register_family` gives a function ``k -> Field``
under the ``ndata`` key, and the field of width ``k`` is named :func:`width_field_name`
(``"lap_pe_k8"``): each width its own cache file, all stored as ``ndata['lap_pe']``. The
data registers the two encodings' families (:mod:`graphformer.data.features.encodings`);
:func:`get_field` makes a family's field on first use.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import dgl
import torch

# Node data (graph.ndata)
FEAT = "feat"  #: input node features (floats) or codes (ints)
LABEL = "label"  #: node-level targets
LAP_PE = "lap_pe"  #: Laplacian eigenvector positional encoding, (N, k)
RWSE = "rwse"  #: random-walk structural encoding, (N, k)
SPD = "spd"  #: shortest-path distances to every node of the sample, (N, max nodes), -1 unreachable
VIRTUAL = "virtual"  #: True at the virtual nodes added by graphformer.graphs.add_virtual_nodes
POSITION = "pos"  #: 3D atom coordinates in Å, (N, 3)

# Edge data (graph.edata)
EDGE_FEAT = "feat"  #: input edge features (floats) or codes (ints)
HOPS = "hops"  #: the hop distance of a k-hop graph's edge
EDGE_KIND = "kind"  #: which graph of a union an edge came from (graphformer.graphs.EdgeKind)

#: What labels describe: one per node (samples are graphs) or one per graph.
LEVELS = ("node", "graph")


@dataclass(frozen=True)
class Field:
    """A node field computed from each sample's graph alone, declared once by its name.

    Parameters
    ----------
    name : what ``needs`` lists and the cache file is named by; also the ``graph.ndata`` key
        the field is stored under unless ``key`` is given.
    compute : ``graph -> Tensor``, one sample's value, with torch and DGL only: shape
        ``(n, ...)`` (fixed trailing shape) for a per-node field, ``(n, n)`` for a
        pairwise one (``pad`` set). Deterministic: the cache stores it once per dataset.
    version : part of the cache file's name; bump it when ``compute`` changes, so that
        caches of the old computation are not read.
    pad : ``None`` for a per-node field; for a pairwise field (row ``i`` holds a value per
        node ``j`` of the same sample), the value that pads each row to the widest sample
        of a batch, so samples of different sizes batch with ``dgl.batch``.
    description : what it is, for progress lines and messages ("shortest-path distances").
    provided_by : for a field that the dataset itself writes (e.g. 3D coordinates, which
        no graph structure determines): which data provides it, for the error when it is
        missing (e.g. ``"data=qm9"``). The data module then checks that every sample
        carries it instead of computing and caching it; ``compute`` only reads it. ``""``
        (the default): a field computed from the graph.
    key : the ``graph.ndata`` key, when it differs from ``name`` (the fields of a family,
        :func:`register_family`: ``lap_pe_k8`` is stored as ``ndata['lap_pe']``); ``""``:
        ``name``.
    settings : what else than the graph the values depend on (library versions, seeds),
        stored with the cache and compared when it is read: a cache computed under other
        settings is recomputed (with a ``CacheWarning``). ``""``: nothing.
    """

    name: str
    compute: Callable[[dgl.DGLGraph], torch.Tensor]
    version: int = 1
    pad: int | float | None = None
    description: str = ""
    provided_by: str = ""
    key: str = ""
    settings: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(
                f"Field name must be an identifier-like string (the ndata key); got {self.name!r}"
            )
        if not callable(self.compute):
            raise TypeError(
                f"Field {self.name!r}: compute must be a callable graph -> Tensor; got "
                f"{type(self.compute).__name__}"
            )
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 1:
            raise ValueError(
                f"Field {self.name!r}: version must be an int ≥ 1; got {self.version!r}"
            )
        if self.pad is not None and (
            isinstance(self.pad, bool) or not isinstance(self.pad, (int, float))
        ):
            raise TypeError(
                f"Field {self.name!r}: pad must be a number (pairwise field) or None (per-node "
                f"field); got {self.pad!r}"
            )
        if not isinstance(self.provided_by, str):
            raise TypeError(
                f"Field {self.name!r}: provided_by must be a string naming the data that "
                f"provides the field (e.g. 'data=qm9'), or ''; got {self.provided_by!r}"
            )
        if not isinstance(self.key, str) or (self.key and not self.key.isidentifier()):
            raise ValueError(
                f"Field {self.name!r}: key must be an identifier-like string (the ndata key) "
                f"or '' (the name); got {self.key!r}"
            )
        if not self.key:
            object.__setattr__(self, "key", self.name)
        if not isinstance(self.settings, str):
            raise TypeError(
                f"Field {self.name!r}: settings must be a string describing what the values "
                f"depend on besides the graph; got {self.settings!r}"
            )

    @property
    def provided(self) -> bool:
        """Whether the dataset writes the field (``provided_by``), rather than the data
        module computing it."""
        return bool(self.provided_by)

    def missing(self, graph: dgl.DGLGraph, where: str = "the graph") -> str:
        """The error message for a provided field that ``graph`` lacks: which field, what
        it is, which data provides it."""
        what = f" ({self.description})" if self.description else ""
        return (
            f"graph.ndata[{self.key!r}]{what} is read by the model but {where} has only "
            f"ndata keys {sorted(graph.ndata)}. The dataset must provide it; "
            f"{self.provided_by} does"
        )

    @property
    def pairwise(self) -> bool:
        """Whether each sample's value is (n, n), padded to the batch's widest sample."""
        return self.pad is not None

    def __call__(self, graph: dgl.DGLGraph) -> torch.Tensor:
        """``compute(graph)``, checked: ``(n, ...)``, or ``(n, n)`` for a pairwise field."""
        value = self.compute(graph)
        n = graph.num_nodes()
        if not isinstance(value, torch.Tensor) or value.dim() == 0 or value.shape[0] != n:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(
                f"field {self.name!r}: compute must return a tensor with one row per node "
                f"({n}); got {shape}"
            )
        if self.pairwise and tuple(value.shape) != (n, n):
            raise ValueError(
                f"pairwise field {self.name!r}: compute must return ({n}, {n}); got "
                f"{tuple(value.shape)}"
            )
        return value


#: Every field the data can compute, by name (see :func:`register_field`).
FIELDS: dict[str, Field] = {}


def register_field(field: Field, replace: bool = False) -> Field:
    """Make ``field`` computable by name (``GraphDataModule(fields=[field.name])``).

    A second field of the same name is refused unless ``replace``; returns ``field``.
    """
    if not isinstance(field, Field):
        raise TypeError(f"register_field takes a graphformer.fields.Field; got {field!r}")
    if field.name in FIELDS and FIELDS[field.name] != field and not replace:
        raise ValueError(
            f"a field named {field.name!r} is already registered ({FIELDS[field.name]}); pick "
            "another name or pass replace=True"
        )
    FIELDS[field.name] = field
    return field


#: Fields computed at a chosen width, by ndata key (see :func:`register_family`).
FAMILIES: dict[str, Callable[[int], Field]] = {}


def width_field_name(key: str, k: int) -> str:
    """``"<key>_k<k>"``: the name of the field of family ``key`` at width ``k``."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"the width of field {key!r} must be an int ≥ 1; got {k!r}")
    return f"{key}_k{k}"


def register_family(key: str, make: Callable[[int], Field]) -> None:
    """Make the fields ``make(k)`` of every width ``k`` computable by the names
    :func:`width_field_name` ``(key, k)``; ``make(k)`` must return a :class:`Field` of that
    name stored under ``key``. A second family of the same key replaces the first."""
    if not isinstance(key, str) or not key.isidentifier() or not callable(make):
        raise TypeError(
            f"register_family takes an ndata key and a callable k -> Field; got {key!r}, {make!r}"
        )
    FAMILIES[key] = make


def _family_field(name: str) -> Field | None:
    """The field ``name`` of a registered family (registered now), or None."""
    match = re.fullmatch(r"(\w+)_k([1-9][0-9]*)", name)
    if match is None or match[1] not in FAMILIES:
        return None
    field = FAMILIES[match[1]](int(match[2]))
    if not isinstance(field, Field) or (field.name, field.key) != (name, match[1]):
        raise TypeError(
            f"the family {match[1]!r} made {field!r} for {name!r}; it must make a Field named "
            f"{name!r} with key {match[1]!r}"
        )
    return register_field(field)


def get_field(field: str | Field) -> Field:
    """The registered :class:`Field` of ``name`` (a :class:`Field` passes through); a
    family's field (``"lap_pe_k8"``) is made and registered on first use."""
    if isinstance(field, Field):
        return field
    if field not in FIELDS and (not isinstance(field, str) or _family_field(field) is None):
        families = [f"{key}_k<k>" for key in sorted(FAMILIES)]
        raise ValueError(
            f"no field named {field!r} is registered; known fields: {sorted(FIELDS)}, "
            f"families: {families}. A mixer that needs a new node field registers it with "
            "graphformer.fields.register_field(Field(name, compute, ...))"
        )
    return FIELDS[field]


# --- shortest-path distances (Graphormer's spatial encoding) --------------------------------

#: The distance of a node that cannot be reached (and of padding).
UNREACHABLE = -1
#: Largest graph whose distances fit the int16 matrix.
MAX_SPD_NODES = torch.iinfo(torch.int16).max


def shortest_distances(graph: dgl.DGLGraph) -> torch.Tensor:
    """(n, n) int16 matrix of hop counts along ``graph``'s directed edges, ``[i, j]`` from
    ``i`` to ``j``, ``-1`` where unreachable (``dgl.shortest_dist``: a BFS from every node)."""
    if graph.num_nodes() > MAX_SPD_NODES:
        raise ValueError(
            f"shortest-path distances are stored as an n × n int16 matrix per graph; a graph "
            f"with {graph.num_nodes()} nodes exceeds {MAX_SPD_NODES} (and would need "
            f"{2 * graph.num_nodes() ** 2 / 1e9:.1f} GB). Use sparse attention on such graphs."
        )
    if not graph.is_homogeneous:
        raise ValueError(
            f"shortest-path distances need homogeneous graphs; got edge types "
            f"{graph.canonical_etypes}"
        )
    if graph.num_nodes() == 0:
        return torch.zeros(0, 0, dtype=torch.int16)
    return dgl.shortest_dist(graph).to(torch.int16)


register_field(
    Field(SPD, shortest_distances, pad=UNREACHABLE, description="shortest-path distances")
)
