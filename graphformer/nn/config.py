"""BlockConfig: the settings of one Transformer block, declared once.

Every block and model takes ``block: BlockConfig`` plus its own few arguments (as
nanoGPT's modules take one ``GPTConfig``): :class:`~graphformer.nn.GraphTransformerBlock`,
:class:`~graphformer.nn.GraphTransformer`, :class:`~graphformer.nn.TransformerEncoder`,
:class:`~graphformer.nn.DecoderBlock`, :class:`~graphformer.nn.TransformerDecoder`,
:class:`~graphformer.nn.Seq2SeqTransformer` and :class:`~graphformer.nn.GNN`. Adding a block
setting means a field here and the code that reads it.

In Hydra configs it is the ``block:`` node of a model (``_target_:
graphformer.nn.BlockConfig``), so a command-line override reads ``model.block.num_heads=8``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from graphformer.nn.core.checks import check_positive
from graphformer.nn.core.message_passing import check_engine

from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "elu": nn.ELU}
NORMS = {"layer": nn.LayerNorm, "batch": nn.BatchNorm1d, "none": lambda dim: nn.Identity()}
#: The block mixer that is not one registered mixer: a local and a global one, each its own
#: branch, as in GraphGPS.
GPS = "gps"


def choose(kind: str, value: str, options) -> str:
    """Return ``value`` if it is one of ``options``, else raise a ValueError listing them."""
    if value not in options:
        raise ValueError(f"unknown {kind} {value!r}; choose one of {sorted(options)}")
    return value


def check_probability(name: str, value: float) -> None:
    """Raise ValueError unless ``value`` is a number in [0, 1) (a dropout rate)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1); got {value!r}")


@dataclass(frozen=True)
class BlockConfig:
    """The settings of a Transformer block, shared by every block of a stack.

    Parameters
    ----------
    dim : node feature width of the blocks (input and output), the model's width.
    mixer : a name of ``graphformer.nn.mixers.REGISTRY`` (``graphformer.nn.mixers.names()``)
        or ``gps`` (``local_mixer`` and ``global_mixer``, each its own branch, as in
        GraphGPS). A :class:`~graphformer.nn.GNN` takes the names that can change width
        (``names(resizes=True)``).
    num_heads : attention heads (attention mixers; a GNN layer whose width it does not
        divide uses one head).
    local_mixer : the local half of ``gps``: a name of ``names("local")``.
    global_mixer : the global half of ``gps``: a name of ``names("global")``.
    global_kwargs : settings of the global mixer in use (its class's ``settings``, e.g.
        exphormer's ``degree``); refused, named, when it does not take them; a block
        refuses them when ``mixer`` selects no global mixer (they would be ignored).
    ffn_ratio : FFN hidden width / ``dim``.
    activation : ``relu``, ``gelu``, ``silu`` or ``elu`` (FFN, heads, between GNN layers).
    norm : ``layer``, ``batch`` or ``none``.
    prenorm : pre-norm (True) or post-norm (False).
    dropout : dropout on the mixer and FFN outputs (and inside the FFN and the mixers
        that own their residual; on every GNN layer's input).
    attn_dropout : dropout on attention weights.
    engine : ``graphformer.nn.core.message_passing.ENGINES``; a block's ``dense`` runs its
        global attention as padded SDPA and its local mixers on ``auto``.
    fast_dropout : every dropout of the blocks (theirs, their FFNs', GatedGCN's, the
        attention weights') draws its masks with
        :func:`graphformer.nn.core.dropout.fast_dropout` (16 random bits per element, 1 at
        p = 0.5, where ``bernoulli_`` draws a double: a GatedGCN layer in 0.70× the time on
        CPU, the ReLU folded in; attention's dense engine writes SDPA out around it), whose
        masks differ from ``nn.Dropout``'s / SDPA's for a seed; off by default.

    Every field is checked on construction; :meth:`replace` returns a changed copy.

    >>> from graphformer.nn import BlockConfig
    >>> block = BlockConfig(dim=32, mixer="gps", local_mixer="gatedgcn", global_mixer="exphormer")
    >>> block.split()
    ('gatedgcn', 'exphormer')
    >>> block.replace(num_heads=8).num_heads
    8
    >>> BlockConfig(norm="rms")
    Traceback (most recent call last):
    ...
    ValueError: unknown norm 'rms'; choose one of ['batch', 'layer', 'none']
    """

    dim: int = 64
    mixer: str = "attention"
    num_heads: int = 4
    local_mixer: str = "gcn"
    global_mixer: str = "full"
    global_kwargs: Mapping[str, Any] = field(default_factory=dict)
    ffn_ratio: float = 2.0
    activation: str = "gelu"
    norm: str = "layer"
    prenorm: bool = True
    dropout: float = 0.0
    attn_dropout: float = 0.0
    engine: str = "auto"
    fast_dropout: bool = False

    def __post_init__(self) -> None:
        from graphformer.nn.mixers import check_name, check_settings, names

        check_positive(dim=self.dim, num_heads=self.num_heads)
        choose("mixer", self.mixer, (*names(), GPS))
        check_name(self.local_mixer, "local", "local_mixer")
        check_name(self.global_mixer, "global", "global_mixer")
        if isinstance(self.ffn_ratio, bool) or not isinstance(self.ffn_ratio, int | float):
            raise ValueError(f"ffn_ratio must be a positive number; got {self.ffn_ratio!r}")
        if self.ffn_ratio <= 0:
            raise ValueError(f"ffn_ratio must be positive; got {self.ffn_ratio}")
        choose("activation", self.activation, ACTIVATIONS)
        choose("norm", self.norm, NORMS)
        if not isinstance(self.prenorm, bool):
            raise ValueError(f"prenorm must be True or False; got {self.prenorm!r}")
        check_probability("dropout", self.dropout)
        check_probability("attn_dropout", self.attn_dropout)
        check_engine(self.engine)
        if not isinstance(self.fast_dropout, bool):
            raise ValueError(f"fast_dropout must be True or False; got {self.fast_dropout!r}")
        if not isinstance(self.global_kwargs, Mapping):
            raise ValueError(
                f"global_kwargs must be a mapping of the global mixer's settings, e.g. "
                f"{{'degree': 6}}; got {self.global_kwargs!r}"
            )
        # A plain dict, also when Hydra hands a DictConfig: the config pickles without
        # OmegaConf and its settings are passed on as keyword arguments.
        object.__setattr__(self, "global_kwargs", dict(self.global_kwargs))
        _, global_name = self.split()
        if global_name is not None:
            check_settings(global_name, self.global_kwargs)

    def __hash__(self) -> int:
        """Hashable like any frozen dataclass, ``global_kwargs`` by its sorted items."""
        values = [getattr(self, f.name) for f in dataclasses.fields(self)]
        return hash(tuple(tuple(sorted(v.items())) if isinstance(v, dict) else v for v in values))

    def split(self) -> tuple[str | None, str | None]:
        """(local name, global name) of the mixers ``mixer`` selects (None: no such branch)."""
        from graphformer.nn.mixers import REGISTRY

        if self.mixer == GPS:
            return self.local_mixer, self.global_mixer
        local = REGISTRY[self.mixer].scope == "local"
        return (self.mixer, None) if local else (None, self.mixer)

    def replace(self, **changes: Any) -> BlockConfig:
        """A copy with ``changes`` (checked as a new config), e.g. ``replace(mixer="full")``."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ValueError(
                f"{unknown} are not BlockConfig fields; choose from "
                f"{[f.name for f in dataclasses.fields(self)]}"
            )
        return dataclasses.replace(self, **changes)


def block_config(block: BlockConfig | None, default: BlockConfig | None = None) -> BlockConfig:
    """``block``, or ``default`` (``BlockConfig()``) when it is None: what a model's
    ``block=`` argument resolves to. Anything else is refused, named."""
    if block is None:
        return BlockConfig() if default is None else default
    if not isinstance(block, BlockConfig):
        raise TypeError(
            f"block must be a graphformer.nn.BlockConfig; got {type(block).__name__} "
            f"{block!r}. Build one with BlockConfig(dim=..., mixer=..., ...)"
        )
    return block


#: Model keys renamed when the block settings moved into BlockConfig (old → field).
LEGACY_KEYS = {"hidden_dim": "dim", "conv": "mixer", "global_attention": "global_mixer"}
#: Block settings whose defaults differed from BlockConfig's, per model class, before it.
LEGACY_DEFAULTS = {
    "GNN": {"dim": 16, "mixer": "gcn", "num_heads": 8, "dropout": 0.5, "activation": "relu"},
    "Seq2SeqTransformer": {"activation": "relu"},
}


def upgrade_model_config(model: Mapping[str, Any]) -> dict[str, Any]:
    """A model config (a ``_target_`` node as a dict) written before :class:`BlockConfig`,
    with the block settings flat on the model (``hidden_dim``, ``mixer``, ``num_heads``,
    ``global_attention``, ...), in today's layout: those settings under ``block``
    (``hidden_dim`` → ``dim``, ``conv`` → ``mixer``, ``global_attention`` →
    ``global_mixer``; the model's old defaults made explicit; a GNN's attention weights
    drop at its ``dropout``, as they did). A config already in today's layout is returned
    as it is. Checkpoints store their run's config; this reads the older ones.
    """
    model = dict(model)
    fields = {f.name for f in dataclasses.fields(BlockConfig)}
    flat = [key for key in model if LEGACY_KEYS.get(key, key) in fields]
    if "block" in model or not flat:
        return model
    kind = str(model.get("_target_", "")).rsplit(".", 1)[-1]
    block: dict[str, Any] = {"_target_": "graphformer.nn.BlockConfig"}
    block.update(LEGACY_DEFAULTS.get(kind, {}))
    for key in flat:
        block[LEGACY_KEYS.get(key, key)] = model.pop(key)
    if kind == "GNN":
        block.setdefault("attn_dropout", block["dropout"])
    model["block"] = block
    return model
