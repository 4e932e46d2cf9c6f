"""The update γ: residual + norm + feed-forward MLP around any message-passing mixer."""

from __future__ import annotations

import inspect

from graphformer.graphs import add_self_loops_with_features
from graphformer.nn.config import ACTIVATIONS, GPS, NORMS, BlockConfig, block_config, choose
from graphformer.nn.core.checks import check_batch_norm, check_node_features
from graphformer.nn.core.dropout import dropout_module
from graphformer.nn.core.message_passing import check_dense_taken
from graphformer.nn.mixers import REGISTRY, Mixer, build, names

import dgl
import torch
from torch import nn

__all__ = ["ACTIVATIONS", "NORMS", "GraphTransformerBlock", "block_mixers", "choose"]


def block_mixers() -> tuple[str, ...]:
    """The block's mixer names: every registered mixer (``graphformer.nn.mixers.names()``)
    and ``gps`` (a local and a global one)."""
    return (*names(), GPS)


def edge_readers() -> tuple[str, ...]:
    """The local mixers that can read edge state (class trait ``reads_edges``)."""
    return tuple(name for name in names("local") if REGISTRY[name].reads_edges)


def feed_forward(
    dim: int, ffn_ratio: float, activation: str, dropout: float, fast_dropout: bool = False
) -> nn.Sequential:
    r""":math:`\mathrm{FFN}(x) = W_2\,\mathrm{drop}(\sigma(W_1 x))`, hidden width
    ``ffn_ratio * dim``; the FFN of every block, encoder and decoder alike (``fast_dropout``:
    the mask from :func:`graphformer.nn.core.dropout.fast_dropout`)."""
    if ffn_ratio <= 0:
        raise ValueError(f"ffn_ratio must be positive; got {ffn_ratio}")
    hidden = max(1, round(ffn_ratio * dim))
    return nn.Sequential(
        nn.Linear(dim, hidden),
        ACTIVATIONS[choose("activation", activation, ACTIVATIONS)](),
        dropout_module(dropout, fast_dropout),
        nn.Linear(hidden, dim),
    )


#: The call every mixer answers (``graphformer.nn.mixers``), quoted in the errors below.
PROTOCOL = (
    "mix(graph, x, edge_state) -> (x, edge_state): x (N, dim) in and out, edge_state "
    "None or (E, ...) in and out"
)


def _check_mixer(name: str, module: object, scope: str) -> None:
    """Check an injected module once: a :class:`Mixer`, or a module with a compatible
    ``mix`` (its traits then take the :class:`Mixer` defaults)."""
    if module is None:
        return
    mix = getattr(module, "mix", None)
    if not isinstance(module, nn.Module) or not callable(mix):
        raise TypeError(
            f"{name} must be a graphformer.nn.Mixer (a {scope} mixer: subclass "
            f"graphformer.nn.mixers.Mixer, or build one with graphformer.nn.mixers.build), "
            f"or an nn.Module with {PROTOCOL}; got {type(module).__name__}"
        )
    try:
        signature = inspect.signature(mix)
    except (TypeError, ValueError):  # a builtin without one: checked at the first call
        return
    try:
        signature.bind(None, None, None)
    except TypeError:
        raise TypeError(
            f"{name}: {type(module).__name__}.mix{signature} cannot be called as "
            f"{PROTOCOL}; give it that signature"
        ) from None


def _trait(mixer: nn.Module, name: str) -> object:
    """A mixer's trait; a duck-typed module without it gets the :class:`Mixer` default."""
    return getattr(mixer, name, getattr(Mixer, name))


def _check_mixed(
    who: str, mixer: nn.Module, out: object, graph: dgl.DGLGraph, x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The result of ``mixer.mix`` on ``graph``: a pair (x', edge_state') with x' of x's
    shape and edge_state' None or one row per edge; else a ValueError stating the protocol
    (a bare tensor would unpack row-wise, one row would broadcast to every node)."""
    name = type(mixer).__name__
    if not (isinstance(out, tuple | list) and len(out) == 2):
        got = type(out).__name__ + (f" of length {len(out)}" if isinstance(out, tuple) else "")
        raise ValueError(f"the {who} mixer {name} returned a {got}; it must answer {PROTOCOL}")
    h, edge_state = out
    if not isinstance(h, torch.Tensor) or h.shape != x.shape:
        got = f"x of shape {tuple(h.shape)}" if isinstance(h, torch.Tensor) else type(h).__name__
        raise ValueError(
            f"the {who} mixer {name} returned {got} for input x of shape {tuple(x.shape)} "
            f"(one row per node); it must answer {PROTOCOL}"
        )
    if edge_state is not None and (
        not isinstance(edge_state, torch.Tensor) or len(edge_state) != graph.num_edges()
    ):
        got = (
            f"{len(edge_state)} rows"
            if isinstance(edge_state, torch.Tensor)
            else type(edge_state).__name__
        )
        raise ValueError(
            f"the {who} mixer {name} returned edge_state with {got} for a graph of "
            f"{graph.num_edges()} edges; it must answer {PROTOCOL}"
        )
    return h, edge_state


def rename_legacy_keys(module: nn.Module, state_dict: dict, prefix: str, renames: dict) -> None:
    """Map state-dict keys written before the Mixer refactor onto ``module``'s own keys, in
    place: ``renames`` maps old attribute names to new ones (``full`` → ``global_mixer``),
    then a key that ``module`` lacks but has without a removed adapter level
    (``.attention.``, ``.conv.``) is moved there."""
    own = set(module.state_dict(keep_vars=True))
    for key in [k for k in state_dict if k.startswith(prefix)]:
        rest = key[len(prefix) :]
        head, _, tail = rest.partition(".")
        new = f"{renames.get(head, head)}.{tail}" if tail else rest
        if new not in own:
            for level in (".attention.", ".conv."):
                stripped = f".{new}".replace(level, ".", 1)[1:]
                if level in f".{new}" and stripped in own:
                    new = stripped
                    break
        if new != rest:
            state_dict[prefix + new] = state_dict.pop(key)


class GraphTransformerBlock(nn.Module):
    r"""One Transformer layer whose token mixers are message passing on a graph.

    Each mixer :math:`m_b` (a local one, a global one, or both, as in GraphGPS) is a
    branch with its own dropout, residual and norm; the branches are summed, then the FFN.
    Post-norm (GraphGPS, Rampášek et al. 2022; PyG ``GPSConv``):

    .. math::
        h = \sum_b \mathrm{norm}_b\big(x + \mathrm{drop}(m_b(x))\big), \qquad
        x' = \mathrm{norm}_{ffn}\big(h + \mathrm{drop}(\mathrm{FFN}(h))\big)

    Pre-norm (default): :math:`h = x + \sum_b \mathrm{drop}(m_b(\mathrm{norm}_b(x)))`,
    :math:`x' = h + \mathrm{drop}(\mathrm{FFN}(\mathrm{norm}_{ffn}(h)))`. With one mixer
    both are the usual Transformer layer. :math:`\mathrm{FFN}(x) = W_2\,\sigma(W_1 x)`
    with hidden width ``ffn_ratio * dim``.

    Mixers are :class:`~graphformer.nn.mixers.Mixer` s, called as ``mixer.mix(graph, x,
    edge_state) -> (x, edge_state)``, chosen by name (``block.mixer``: a name of
    ``graphformer.nn.mixers.names()``, or ``gps`` for ``block.local_mixer`` plus
    ``block.global_mixer``, each its own branch, as in GraphGPS) or injected as modules,
    like PyG's ``GPSConv(conv=...)``. The local mixer's edge state is returned with
    ``return_edges=True``, so a stack can pass it on to the next block.

    Parameters
    ----------
    block : the block's settings (:class:`~graphformer.nn.BlockConfig`); its ``mixer``
        names are ignored when modules are injected.
    edge_dim : edge state width, for a local mixer that reads edge state.
    self_loops : add self-loops to the input graph for local mixers that run on them
        (built once per graph object and reused). ``GraphTransformer`` passes the looped
        graph itself, so edge state keeps one layout across blocks.
    check_finite : raise on NaN/inf input features.
    local, global_mixer : mixer modules to use instead of the named ones (either or both):
        :class:`~graphformer.nn.mixers.Mixer` s, or modules with a compatible ``mix(graph,
        x, edge_state) -> (x, edge_state)`` (their traits take the Mixer defaults). Each
        call's result is checked: a pair, x with one row per node, edge state None or one
        row per edge; anything else is refused, the message stating this protocol.

    >>> import dgl, torch
    >>> from graphformer.nn import BlockConfig, GraphTransformerBlock
    >>> graph = dgl.graph(([0, 1, 2], [1, 2, 0]))
    >>> block = GraphTransformerBlock(BlockConfig(dim=8, mixer="gps", num_heads=2))
    >>> block(graph, torch.randn(3, 8)).shape
    torch.Size([3, 8])
    """

    def __init__(
        self,
        block: BlockConfig | None = None,
        *,
        edge_dim: int | None = None,
        self_loops: bool = True,
        check_finite: bool = True,
        local: nn.Module | None = None,
        global_mixer: nn.Module | None = None,
    ) -> None:
        super().__init__()
        block = block_config(block)
        _check_mixer("local", local, "local")
        _check_mixer("global_mixer", global_mixer, "global")
        self.config = block
        dim = block.dim
        self.dim, self.prenorm, self.self_loops = dim, block.prenorm, self_loops
        self.check_finite = check_finite
        if local is None and global_mixer is None:
            local_name, global_name = block.split()
            if global_name is None and block.global_kwargs:
                raise ValueError(
                    f"global_kwargs {block.global_kwargs} are settings of a global mixer, but "
                    f"mixer={block.mixer!r} has none, so they would be ignored: drop "
                    "global_kwargs (model.block.global_kwargs), or choose a global mixer "
                    f"(mixer='gps' with global_mixer=..., or one of {sorted(names('global'))})"
                )
            if local_name:
                local = build(local_name, block, "local", edge_dim=edge_dim)
            if global_name:
                global_mixer = build(global_name, block, "global")
        self.reads_edges = local is not None and bool(_trait(local, "reads_edges"))
        if edge_dim is not None and not self.reads_edges:
            raise ValueError(
                f"edge features (edge_dim={edge_dim}) need a local mixer that reads them "
                f"({', '.join(edge_readers())}); got mixer={block.mixer!r}"
                + (f", local_mixer={block.local_mixer!r}" if block.mixer == GPS else "")
            )
        self.local, self.global_mixer = local, global_mixer
        #: ``graph.ndata`` fields its mixers read besides ``x`` (``graphformer.nn.mixers``).
        self.needs = tuple(
            sorted({key for m in (local, global_mixer) if m for key in _trait(m, "needs")})
        )
        self.norm_local = NORMS[block.norm](dim) if local is not None else None
        self.norm_global = NORMS[block.norm](dim) if global_mixer is not None else None
        self.norm_ffn = NORMS[block.norm](dim)
        fast = block.fast_dropout
        self.ffn = feed_forward(dim, block.ffn_ratio, block.activation, block.dropout, fast)
        self.dropout = dropout_module(block.dropout, fast)
        check_dense_taken(block.engine, self, "GraphTransformerBlock")  # the rule: message_passing

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        """Load state dicts written before the Mixer refactor too (``full.*``,
        ``norm_full.*``, adapter levels ``local.attention.*`` / ``local.conv.*``)."""
        renames = {"full": "global_mixer", "norm_full": "norm_global"}
        rename_legacy_keys(self, state_dict, prefix, renames)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _branch(
        self,
        mixer: nn.Module,
        norm: nn.Module,
        graph: dgl.DGLGraph,
        x: torch.Tensor,
        edge_state: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One branch: pre-norm ``drop(m(norm(x)))``, post-norm ``norm(x + drop(m(x)))``
        (``norm(m(x))`` for a mixer that owns its residual)."""
        who = "local" if mixer is self.local else "global"
        owns_residual = _trait(mixer, "owns_residual")
        if self.prenorm:
            h = norm(x)
            out, edge_state = _check_mixed(who, mixer, mixer.mix(graph, h, edge_state), graph, h)
            return (out - h if owns_residual else self.dropout(out)), edge_state
        out, edge_state = _check_mixed(who, mixer, mixer.mix(graph, x, edge_state), graph, x)
        return norm(out if owns_residual else x + self.dropout(out)), edge_state

    def forward(
        self,
        graph: dgl.DGLGraph,
        x: torch.Tensor,
        edge_state: torch.Tensor | None = None,
        return_edges: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]:
        """``x``: (N, dim). ``edge_state``: (E, edge_dim), the edge state of ``graph``.

        Returns (N, dim), and with ``return_edges`` also the edge state after the local
        mixer, laid out on the edges of the graph it ran on (``graph`` plus self-loops
        for mixers that add them, unless ``self_loops=False``).
        """
        dtype = self.ffn[0].weight.dtype
        check_node_features("x", x, graph.num_nodes(), self.dim, self.check_finite, dtype)
        check_batch_norm(self.norm_ffn, x)
        if edge_state is not None and not self.reads_edges:
            raise ValueError(
                "edge_state was given but the block was built without edge_dim; pass "
                "edge_dim=<edge feature width> (with a mixer that reads edge features)"
            )
        branches = []
        if self.local is not None:
            local_graph = graph
            if self.self_loops and _trait(self.local, "self_loops"):
                local_graph, edge_state = add_self_loops_with_features(graph, edge_state)
            out, edge_state = self._branch(self.local, self.norm_local, local_graph, x, edge_state)
            branches.append(out)
        if self.global_mixer is not None:
            out = self._branch(self.global_mixer, self.norm_global, graph, x, None)[0]
            branches.append(out)
        # one branch as is: sum() would add it to 0, an extra (N, dim) pass and autograd node
        mixed = branches[0] if len(branches) == 1 else sum(branches)
        if self.prenorm:
            h = x + mixed
            x = h + self.dropout(self.ffn(self.norm_ffn(h)))
        else:
            h = mixed
            x = self.norm_ffn(h + self.dropout(self.ffn(h)))
        return (x, edge_state) if return_edges else x
