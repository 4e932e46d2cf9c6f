"""The encoder–decoder Transformer as message passing equals ``torch.nn.Transformer``.

Encoder: attention on the complete graph of each source. Decoder: attention on the causal
graph of each target, then on the complete bipartite graph source → target. With copied
weights, both stacks (≥ 2 layers, pre- and post-norm, key-padding masks and the causal
mask) match ``torch.nn.Transformer(batch_first=True)`` in outputs and gradients on every
engine, and greedy generation matches a step-by-step decoding with the torch reference.
"""

from __future__ import annotations

import warnings

import graphformer  # noqa: F401  (before DGL)
from graphformer.graphs import causal_graph, complete_bipartite
from graphformer.graphs import transformer as graphs_module
from graphformer.nn import (
    BlockConfig,
    DecoderBlock,
    MultiHeadAttention,
    Seq2SeqTransformer,
    TransformerDecoder,
    TransformerEncoder,
)
from graphformer.nn.core.dense_decoder import causal_attention
from graphformer.nn.models import decoder as decoder_module
from graphformer.nn.models.seq2seq import SEQ2SEQ_BLOCK

import dgl
import pytest
import torch
from helpers import assert_close, copy_into_torch_mha, offsets, pad, randomize_biases, unpad
from torch import nn

DIM, HEADS, FFN = 16, 4, 2.0
ENGINES = ("auto", "dgl", "dense", "torch")
#: Pairs of different lengths: the bipartite graph of each pair is rectangular.
SRC_SIZES, TGT_SIZES = [5, 3, 7], [4, 6, 1]


def stacks(prenorm: bool, engine: str, layers: int = 2):
    block = BlockConfig(
        dim=DIM, num_heads=HEADS, ffn_ratio=FFN, activation="relu", prenorm=prenorm, engine=engine
    )
    encoder = TransformerEncoder(block, layers)
    decoder = TransformerDecoder(block, layers)
    for module in (encoder, decoder):
        randomize_biases(module)
        with torch.no_grad():
            for name, param in module.named_parameters():
                if "norm" in name and name.endswith("weight"):
                    param.uniform_(0.5, 1.5)
    return encoder, decoder


def torch_layout(encoder: TransformerEncoder, decoder: TransformerDecoder, get) -> dict:
    """Our parameters (``get(param)``: the value or the gradient) under ``nn.Transformer``'s
    names; the q/k/v projections are concatenated into ``in_proj_*``."""
    out = {}

    def attention(prefix: str, mha: MultiHeadAttention) -> None:
        projections = (mha.q_proj, mha.k_proj, mha.v_proj)
        out[prefix + "in_proj_weight"] = torch.cat([get(p.weight) for p in projections])
        out[prefix + "in_proj_bias"] = torch.cat([get(p.bias) for p in projections])
        affine(prefix + "out_proj.", mha.out_proj)

    def affine(prefix: str, module: nn.Module) -> None:
        out[prefix + "weight"], out[prefix + "bias"] = get(module.weight), get(module.bias)

    for i, block in enumerate(encoder.blocks):
        prefix = f"encoder.layers.{i}."
        attention(prefix + "self_attn.", block.global_mixer)
        for name, module in (("linear1", block.ffn[0]), ("linear2", block.ffn[3])):
            affine(f"{prefix}{name}.", module)
        affine(prefix + "norm1.", block.norm_global)
        affine(prefix + "norm2.", block.norm_ffn)
    affine("encoder.norm.", encoder.norm)
    for i, block in enumerate(decoder.blocks):
        prefix = f"decoder.layers.{i}."
        attention(prefix + "self_attn.", block.self_attn)
        attention(prefix + "multihead_attn.", block.cross_attn)
        for name, module in (("linear1", block.ffn[0]), ("linear2", block.ffn[3])):
            affine(f"{prefix}{name}.", module)
        for name in ("norm1", "norm2", "norm3"):
            affine(f"{prefix}{name}.", getattr(block, name))
    affine("decoder.norm.", decoder.norm)
    return out


def torch_transformer(encoder, decoder, prenorm: bool, layers: int = 2) -> nn.Transformer:
    with warnings.catch_warnings():  # torch: no nested tensors with norm_first (expected)
        warnings.filterwarnings("ignore", "enable_nested_tensor")
        reference = nn.Transformer(
            DIM,
            HEADS,
            layers,
            layers,
            dim_feedforward=round(FFN * DIM),
            dropout=0.0,
            activation="relu",
            batch_first=True,
            norm_first=prenorm,
        )
    reference.load_state_dict(torch_layout(encoder, decoder, lambda p: p.detach()))
    return reference


def causal_mask(length: int) -> torch.Tensor:
    """True where attention is not allowed: key j > query i."""
    return torch.ones(length, length, dtype=torch.bool).triu(1)


def reference_forward(reference: nn.Transformer, x, y, src_sizes, tgt_sizes):
    src, src_pad = pad(x, src_sizes)
    tgt, tgt_pad = pad(y, tgt_sizes)
    memory = reference.encoder(src, src_key_padding_mask=src_pad)
    out = reference.decoder(
        tgt,
        memory,
        tgt_mask=causal_mask(tgt.shape[1]),
        tgt_key_padding_mask=tgt_pad,
        memory_key_padding_mask=src_pad,
        tgt_is_causal=True,
    )
    return unpad(memory, src_sizes), unpad(out, tgt_sizes)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("prenorm", [True, False], ids=["prenorm", "postnorm"])
def test_encoder_decoder_equals_torch_transformer_outputs_and_gradients(engine, prenorm):
    encoder, decoder = stacks(prenorm, engine)
    reference = torch_transformer(encoder, decoder, prenorm)
    x = torch.randn(sum(SRC_SIZES), DIM, requires_grad=True)
    y = torch.randn(sum(TGT_SIZES), DIM, requires_grad=True)
    x_ref, y_ref = (t.detach().clone().requires_grad_() for t in (x, y))
    weight = torch.randn(sum(TGT_SIZES), DIM)

    memory = encoder(x, SRC_SIZES)
    out = decoder(y, TGT_SIZES, memory, SRC_SIZES)
    ref_memory, ref_out = reference_forward(reference, x_ref, y_ref, SRC_SIZES, TGT_SIZES)
    what = f"vs nn.Transformer ({engine}, {'pre' if prenorm else 'post'}-norm)"
    assert_close(f"encoder output {what}", memory, ref_memory)
    assert_close(f"decoder output {what}", out, ref_out)

    (out * weight).sum().backward()
    (ref_out * weight).sum().backward()
    assert_close(f"source gradient {what}", x.grad, x_ref.grad)
    assert_close(f"target gradient {what}", y.grad, y_ref.grad)
    ours = torch_layout(encoder, decoder, lambda p: p.grad)
    theirs = dict(reference.named_parameters())
    assert set(ours) == set(theirs)
    for name, grad in ours.items():
        assert_close(f"parameter gradients {what}", grad, theirs[name].grad)


@pytest.mark.parametrize("engine", ["dgl", "torch"])
def test_attention_on_the_causal_graph_is_masked_self_attention(engine):
    """The layer alone: on causal_graph it is nn.MultiheadAttention with the causal mask
    (GPT-style), and the dense engine's is_causal SDPA computes the same."""
    ours = randomize_biases(MultiHeadAttention(DIM, HEADS, engine=engine)).eval()
    theirs = nn.MultiheadAttention(DIM, HEADS, batch_first=True).eval()
    copy_into_torch_mha(ours, theirs)
    x = torch.randn(sum(TGT_SIZES), DIM)
    out = ours(causal_graph(TGT_SIZES), x)
    padded, mask = pad(x, TGT_SIZES)
    causal = causal_mask(padded.shape[1])
    expected = theirs(padded, padded, padded, attn_mask=causal, key_padding_mask=mask)[0]
    assert_close(
        "attention on causal_graph vs nn.MultiheadAttention", out, unpad(expected, TGT_SIZES)
    )
    dense = causal_attention(ours, x, torch.tensor(TGT_SIZES))
    assert_close("dense causal attention vs message passing", dense, out)


@pytest.mark.parametrize("engine", ENGINES)
def test_decoder_is_causal_and_ignores_memory_order(engine):
    """Row i sees target rows j ≤ i only; the memory of a sample is a set (no positions);
    samples are independent of their order in the batch."""
    _, decoder = stacks(True, engine)
    memory = torch.randn(sum(SRC_SIZES), DIM)
    y = torch.randn(sum(TGT_SIZES), DIM)
    out = decoder(y, TGT_SIZES, memory, SRC_SIZES)

    start = offsets(TGT_SIZES)[1].item() + 3  # sample 1 from position 3 on, and sample 2
    changed = y.clone()
    changed[start:] += torch.randn(len(y) - start, DIM)
    out_changed = decoder(changed, TGT_SIZES, memory, SRC_SIZES)
    assert_close("decoder rows before a change (causality)", out_changed[:start], out[:start])
    assert not torch.isclose(out_changed[start:], out[start:]).all(dim=1).any()

    perm = torch.cat(
        [s + torch.randperm(n) for s, n in zip(offsets(SRC_SIZES).tolist(), SRC_SIZES, strict=True)]
    )
    assert_close(
        "decoder output under memory permutation",
        decoder(y, TGT_SIZES, memory[perm], SRC_SIZES),
        out,
    )

    order = [2, 0, 1]  # the samples in another order: their rows move with them

    def rows(sizes):
        return torch.cat([offsets(sizes)[b] + torch.arange(sizes[b]) for b in order])

    swapped = decoder(
        y[rows(TGT_SIZES)],
        [TGT_SIZES[b] for b in order],
        memory[rows(SRC_SIZES)],
        [SRC_SIZES[b] for b in order],
    )
    assert_close("decoder output under sample reordering", swapped, out[rows(TGT_SIZES)])


def test_engines_agree_with_an_empty_source_and_an_empty_target():
    """A target without source rows gets out_proj.bias from cross-attention on every engine."""
    src_sizes, tgt_sizes = [0, 4, 2], [3, 0, 2]
    memory = torch.randn(6, DIM)
    y = torch.randn(5, DIM)
    outputs = {}
    for engine in ENGINES:
        torch.manual_seed(0)
        block = randomize_biases(
            DecoderBlock(BlockConfig(dim=DIM, num_heads=HEADS, engine=engine))
        ).eval()
        outputs[engine] = block(y, tgt_sizes, memory, src_sizes)
    for engine in ENGINES[1:]:
        assert_close(
            f"decoder block {engine} vs auto, empty samples", outputs[engine], outputs["auto"]
        )


def test_auto_builds_no_graph(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the dense engine must not build a graph")

    for module, name in (
        (decoder_module, "causal_graph"),
        (decoder_module, "complete_bipartite"),
        (graphs_module, "complete_graph"),
    ):
        monkeypatch.setattr(module, name, refuse)
    encoder, decoder = stacks(True, "auto")
    memory = encoder(torch.randn(sum(SRC_SIZES), DIM), SRC_SIZES)
    decoder(torch.randn(sum(TGT_SIZES), DIM), TGT_SIZES, memory, SRC_SIZES)


@pytest.mark.parametrize(
    ("engine", "prenorm"), [("dgl", True), ("dense", False)], ids=["dgl-prenorm", "dense-postnorm"]
)
def test_decoder_block_gradcheck_float64(engine, prenorm):
    block = randomize_biases(
        DecoderBlock(BlockConfig(dim=4, num_heads=2, prenorm=prenorm, engine=engine), memory_dim=3)
    )
    block = block.double()
    names = [name for name, _ in block.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in block.parameters()]
    y = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    memory = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    sizes, memory_sizes = torch.tensor([3, 2]), torch.tensor([1, 3])
    graphs = (causal_graph(sizes), complete_bipartite(memory_sizes, sizes))
    graphs = graphs if engine == "dgl" else (None, None)  # built once, not per evaluation

    def run(*tensors):
        weights = dict(zip(names, tensors[: len(names)], strict=True))
        y, memory = tensors[len(names) :]
        inputs = (y, sizes, memory, memory_sizes, *graphs)
        return torch.func.functional_call(block, weights, inputs)

    assert torch.autograd.gradcheck(run, [*params, y, memory])


def reference_greedy(model: Seq2SeqTransformer, reference: nn.Transformer, src, sizes, steps, bos):
    """One sample at a time, one token at a time, through ``nn.Transformer``."""
    tokens, logits = [], []
    for start, size in zip(offsets(sizes).tolist(), sizes, strict=True):
        source = src[start : start + size]
        memory_in = model.src_embed(source, torch.tensor([size]), "src")[None]
        prefix = [bos]
        sample_logits = []
        for _ in range(steps):
            target = torch.tensor(prefix)
            tgt_in = model.tgt_embed(target, torch.tensor([len(prefix)]), "tgt")[None]
            out = reference(memory_in, tgt_in, tgt_mask=causal_mask(len(prefix)))
            step = model.head(out[0, -1])
            sample_logits.append(step)
            prefix.append(int(step.argmax()))
        tokens.append(prefix[1:])
        logits.append(torch.stack(sample_logits))
    return torch.tensor(tokens), torch.stack(logits)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("prenorm", [True, False], ids=["prenorm", "postnorm"])
def test_greedy_generation_equals_step_by_step_reference(engine, prenorm):
    vocab, bos, steps, sizes = 9, 8, 6, [4, 1, 6]
    block = SEQ2SEQ_BLOCK.replace(
        dim=DIM, num_heads=HEADS, ffn_ratio=FFN, prenorm=prenorm, engine=engine
    )
    model = Seq2SeqTransformer(vocab, vocab, block, 2, max_len=8)
    model = randomize_biases(model).eval()
    reference = torch_transformer(model.encoder, model.decoder, prenorm).eval()
    src = torch.randint(0, bos, (sum(sizes),))

    tokens, logits = model.generate(src, sizes, steps, bos)

    with torch.no_grad():
        ref_tokens, ref_logits = reference_greedy(model, reference, src, sizes, steps, bos)
    assert torch.equal(tokens, ref_tokens)
    assert_close(f"greedy logits vs step-by-step nn.Transformer ({engine})", logits, ref_logits)
    assert torch.equal(tokens, logits.argmax(-1))


def test_generate_stops_at_eos_and_pads_after_it():
    model = Seq2SeqTransformer(5, 5, SEQ2SEQ_BLOCK.replace(dim=8, num_heads=2), 1, max_len=6).eval()
    with torch.no_grad():
        model.head.bias.zero_()
        model.head.bias[3] = 100.0  # every step predicts token 3
    tokens, logits = model.generate(torch.tensor([0, 1, 2]), [2, 1], 5, bos=4, eos=3, pad=0)
    assert tokens.tolist() == [[3], [3]] and logits.shape == (2, 1, 5)
    with torch.no_grad():
        model.head.bias[3] = 0.0
        model.head.bias[1] = 100.0
    tokens, _ = model.generate(torch.tensor([0, 1, 2]), [2, 1], 4, bos=4, eos=3, pad=0)
    assert tokens.shape == (2, 4)  # never produced eos: ran every step


def test_teacher_forcing_equals_generation_on_its_own_output():
    """forward on the greedy output shifted right reproduces the greedy logits."""
    model = Seq2SeqTransformer(
        7, 7, SEQ2SEQ_BLOCK.replace(dim=DIM, num_heads=HEADS), 2, max_len=8
    ).eval()
    src, sizes, bos = torch.randint(0, 6, (9,)), [5, 4], 6
    tokens, logits = model.generate(src, sizes, 5, bos)
    shifted = torch.cat([torch.full((2, 1), bos), tokens[:, :-1]], dim=1)
    with torch.no_grad():
        forced = model(src, sizes, shifted.reshape(-1), [5, 5])
    assert_close("teacher forcing vs greedy logits", forced, logits.reshape(-1, 7))


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (
            lambda m: m(torch.tensor([0, 1]), [3], torch.tensor([0]), [1]),
            r"src_sizes must .* sum to 2",
        ),
        (
            lambda m: m(torch.tensor([0, 9]), [2], torch.tensor([0]), [1]),
            r"src ids must lie in \[0, 5\)",
        ),
        (
            lambda m: m(torch.tensor([0.0]), [1], torch.tensor([0]), [1]),
            r"src must be a 1-D tensor",
        ),
        (lambda m: m(torch.zeros(5).long(), [5], torch.tensor([0]), [1]), r"max_len=4"),
        (
            lambda m: m(torch.tensor([0]), [1], torch.tensor([0, 1]), [1, 1]),
            r"same samples; got 2 and 1",
        ),
    ],
    ids=["sizes", "vocab", "dtype", "max_len", "samples"],
)
def test_bad_input_is_named(call, pattern):
    model = Seq2SeqTransformer(5, 5, SEQ2SEQ_BLOCK.replace(dim=8, num_heads=2), 1, max_len=4)
    with pytest.raises(ValueError, match=pattern):
        call(model)


def test_dense_engine_refuses_a_given_graph_and_unknown_engines_are_listed():
    block = DecoderBlock(BlockConfig(dim=8, num_heads=2, engine="dense"))
    with pytest.raises(ValueError, match=r"engine='dense' .* cannot honour"):
        block(torch.randn(3, 8), [3], torch.randn(2, 8), [2], self_graph=causal_graph([3]))
    with pytest.raises(ValueError, match="unknown engine 'sparse'"):
        DecoderBlock(BlockConfig(dim=8, num_heads=2, engine="sparse"))


# --- the sequence task: data, Lightning task, recipe --------------------------------------


def digits(tmp_path, **kwargs):
    from graphformer.data import DigitSequenceDataset

    return DigitSequenceDataset(root=tmp_path, **{"num_graphs": 40, **kwargs})


@pytest.mark.parametrize("rule", ["reverse", "sort"])
def test_digit_sequences_are_seeded_cached_and_transformed(tmp_path, rule):
    from graphformer.data.datasets.sequences import EOS, PAD

    data = digits(tmp_path, rule=rule, min_len=2, max_len=6)
    again = digits(tmp_path / "elsewhere", rule=rule, min_len=2, max_len=6)  # generated anew
    cached = digits(tmp_path, rule=rule, min_len=2, max_len=6)  # loaded from the cache
    assert data.cache_path.is_file() and data.cache_path != again.cache_path
    lengths = set()
    for index in range(len(data)):
        graph, target = data[index]
        source = graph.ndata["feat"]
        for other in (again, cached):
            assert torch.equal(other[index][0].ndata["feat"], source)
            assert torch.equal(other[index][1], target)
        n = len(source)
        lengths.add(n)
        expected = source.flip(0) if rule == "reverse" else source.sort().values
        assert target.shape == (7,) and torch.equal(target[:n], expected)
        assert target[n] == EOS and (target[n + 1 :] == PAD).all()
        assert graph.num_edges() == n - 1  # the sequence order, i → i+1
    assert lengths <= set(range(2, 7)) and len(lengths) > 1
    val = digits(tmp_path, rule=rule, split="val", min_len=2, max_len=6)
    assert not all(torch.equal(val[i][0].ndata["feat"], data[i][0].ndata["feat"]) for i in range(5))


def test_digit_sequences_reject_bad_settings(tmp_path):
    with pytest.raises(
        ValueError, match=r"unknown rule 'rotate'; choose one of \['reverse', 'sort'\]"
    ):
        digits(tmp_path, rule="rotate")
    with pytest.raises(ValueError, match=r"max_len must be an int ≥ 5; got 3"):
        digits(tmp_path, min_len=5, max_len=3)


def test_task_teacher_forces_then_decodes_greedily_at_test(tmp_path):
    from functools import partial

    from graphformer.data import GraphDataModule
    from graphformer.data.datasets.sequences import BOS, PAD, VOCAB, DigitSequenceDataset
    from graphformer.tasks import SequenceToSequence

    data = GraphDataModule(
        partial(DigitSequenceDataset, root=tmp_path, max_len=5),
        batch_size=8,
        train_graphs=16,
        val_graphs=8,
        test_graphs=8,
    )
    graph, labels = next(iter(data.train_dataloader()))
    assert labels.shape == (8, 6) and graph.batch_size == 8
    model = Seq2SeqTransformer(
        10, VOCAB, SEQ2SEQ_BLOCK.replace(dim=DIM, num_heads=HEADS), 1, max_len=6
    ).eval()
    task = SequenceToSequence(model, partial(torch.optim.AdamW), num_classes=VOCAB)

    forced = task.outputs(graph, labels, "train")
    assert forced.shape == (8, 6, VOCAB)
    valid = labels != PAD
    start = torch.full((8, 1), BOS)
    shifted = torch.cat([start, labels[:, :-1]], dim=1)[valid]
    direct = model(graph.ndata["feat"], graph.batch_num_nodes(), shifted, valid.sum(1))
    assert_close("task teacher forcing vs model forward", forced[valid], direct)
    assert (forced[~valid] == 0).all()
    loss = task.loss(forced, labels)
    assert_close(
        "task loss vs cross-entropy over target tokens",
        loss,
        torch.nn.functional.cross_entropy(direct, labels[valid]),
    )

    greedy = task.outputs(graph, labels, "test")
    tokens, logits = model.generate(graph.ndata["feat"], graph.batch_num_nodes(), 6, BOS)
    assert_close("task test outputs vs greedy logits", greedy, logits)
    assert torch.equal(task(graph, 6), tokens)
    with pytest.raises(ValueError, match=r"bos=13 must be a token id in \[0, 13\)"):
        SequenceToSequence(model, partial(torch.optim.AdamW), num_classes=VOCAB, bos=13)


def test_sequence_accuracy_counts_whole_sequences_and_ignores_padding():
    from functools import partial

    from graphformer.data.datasets.sequences import EOS, PAD, VOCAB
    from graphformer.tasks import SequenceToSequence

    task = SequenceToSequence(nn.Linear(1, 1), partial(torch.optim.AdamW), num_classes=VOCAB)
    target = torch.tensor([[3, 1, EOS, PAD], [2, 2, 2, EOS]])
    predicted = torch.tensor([[3, 1, EOS, 7], [2, 2, 5, EOS]])  # padding ignored; one error
    metrics = task.metrics()
    metrics.update(predicted, target)
    values = metrics.compute()
    assert values["seq_acc"] == 0.5
    assert_close("token accuracy", values["token_acc"], torch.tensor(6 / 7))


def test_digits_recipe_starts_and_takes_a_step(tmp_path, data_dir):
    from graphformer.cli.train import train

    from training import compose_config

    small = ["data.train_graphs=8", "data.val_graphs=4", "data.test_graphs=4", "data.batch_size=4"]
    quick = ["debug=fast_dev_run", "logger=none", "callbacks=none"]
    cfg = compose_config(["experiment=digits_reverse", *quick, *small], tmp_path, data_dir)
    assert cfg.model._target_ == "graphformer.nn.Seq2SeqTransformer"
    assert cfg.optimized_metric == "val/seq_acc"
    metric = train(cfg)
    assert metric is not None and 0.0 <= metric <= 1.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bos": 4, "eos": 5}, r"eos=5 must be a target token id in \[0, 5\)"),
        ({"bos": 4, "eos": 3, "pad": 10}, r"pad=10 must be a target token id in \[0, 5\)"),
        ({"bos": -1}, r"bos=-1 must be a target token id in \[0, 5\)"),
        ({"bos": 4, "pad": 0}, r"pad=0 is used only with eos"),
    ],
)
def test_generate_refuses_token_ids_outside_the_target_vocabulary(kwargs, message):
    """Issue 22, item 5: an eos the head can never produce ran generation to full length."""
    model = Seq2SeqTransformer(5, 5, SEQ2SEQ_BLOCK.replace(dim=8, num_heads=2), 1, max_len=6)
    with pytest.raises(ValueError, match=message):
        model.generate(torch.tensor([0, 1, 2]), [2, 1], 4, **kwargs)


def test_teacher_forcing_refuses_pad_in_the_middle_of_a_target():
    """Issue 22, item 6: ``[3, PAD, 1, EOS]`` shifted the inputs after the PAD by one."""
    from functools import partial

    from graphformer.data.datasets.sequences import EOS, PAD, VOCAB
    from graphformer.tasks import SequenceToSequence

    model = Seq2SeqTransformer(10, VOCAB, SEQ2SEQ_BLOCK.replace(dim=8, num_heads=2), 1)
    task = SequenceToSequence(model, partial(torch.optim.AdamW), num_classes=VOCAB)
    graph = dgl.batch([dgl.graph(([], []), num_nodes=2)] * 2)
    graph.ndata["feat"] = torch.tensor([1, 2, 3, 4])
    labels = torch.tensor([[3, 1, EOS, PAD], [3, PAD, 1, EOS]])
    with pytest.raises(ValueError, match=r"PAD \(id \d+\) in the middle of target 1.*position 1"):
        task.outputs(graph, labels, "train")
