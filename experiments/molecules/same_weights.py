"""graphformer's molecule model and compare.py's PyG peer given the same weights: outputs and
gradients on real molecules, in eval mode and in training mode (BatchNorm on batch statistics;
dropout set to 0 on both sides so that the two compute one function).

    python experiments/molecules/same_weights.py --recipe bbbp_gps --root /tmp/gfdata
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import compare  # noqa: E402
import torch  # noqa: E402


def peer_state(ours: dict[str, torch.Tensor], gps: bool) -> dict[str, torch.Tensor]:
    """graphformer's state dict renamed (and the attention projections packed) into the
    peer's names."""
    out = {}
    for name, value in ours.items():
        name = name.removeprefix("model.")
        name = name.replace("node_encoder.embedding", "atoms").replace(
            "edge_encoder.embedding", "bonds"
        )
        name = name.replace("rwse.linear", "rwse").replace("blocks.", "layers.")
        if gps:
            for a, b in (
                ("local.mlp", "conv.nn"),
                ("local.eps", "conv.eps"),
                ("global_mixer.out_proj", "attn.out_proj"),
                ("norm_local", "norm1.module"),
                ("norm_global", "norm2.module"),
                ("norm_ffn", "norm3.module"),
                ("ffn.", "mlp."),
            ):
                name = name.replace(a, b)
        if not gps:  # GraphGPS-style GINE blocks: layers.i.{nn,eps}, norms1.i, norms2.i, ffns.i
            name = re.sub(r"layers\.(\d+)\.local\.mlp\.", r"layers.\1.nn.", name)
            name = re.sub(r"layers\.(\d+)\.local\.eps", r"layers.\1.eps", name)
            name = re.sub(r"layers\.(\d+)\.norm_local\.", r"norms1.\1.", name)
            name = re.sub(r"layers\.(\d+)\.norm_ffn\.", r"norms2.\1.", name)
            name = re.sub(r"layers\.(\d+)\.ffn\.", r"ffns.\1.", name)
        out[name] = value
    if gps:
        for key in [k for k in out if ".global_mixer.q_proj." in k]:
            prefix, kind = key.split(".global_mixer.q_proj.")
            parts = [out.pop(f"{prefix}.global_mixer.{p}_proj.{kind}") for p in "qkv"]
            out[f"{prefix}.attn.in_proj_{kind}"] = torch.cat(parts)
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default="bbbp_gps")
    parser.add_argument("--graphs", type=int, default=128)
    parser.add_argument("--root", default="data")
    args = parser.parse_args(argv)
    overrides = ["model.block.dropout=0.0", "model.block.attn_dropout=0.0"]
    settings = compare.recipe_settings(args.recipe, overrides)
    graphs, labels, info = compare.load_split(
        settings, "train", args.graphs, Path(args.root) / "molecules"
    )
    batches = compare.make_batches(
        graphs, labels, settings["batch_size"], torch.arange(len(graphs))
    )
    torch.manual_seed(0)
    ours = compare.BUILD["graphformer"](settings, info.out_dim).double()
    peer = compare.BUILD["pyg"](settings, info.out_dim).double()
    gps = settings["model"]["block"]["mixer"] == "gps"
    missing = peer.load_state_dict(peer_state(ours.state_dict(), gps), strict=True)
    assert not missing.missing_keys and not missing.unexpected_keys
    result = {}
    for mode in ("eval", "train"):
        worst = grad_worst = 0.0
        for b in batches:
            b = {
                k: (v.double() if torch.is_tensor(v) and v.is_floating_point() else v)
                for k, v in b.items()
            }
            if "graph" in b:
                g = b["graph"]
                for key in list(g.ndata):
                    if g.ndata[key].is_floating_point():
                        g.ndata[key] = g.ndata[key].double()
            for model in (ours, peer):
                model.train(mode == "train")
                model.zero_grad(set_to_none=True)
            a, p = ours(b), peer(b)
            worst = max(worst, float((a - p).abs().max() / p.abs().max()))
            a.square().sum().backward()
            p.square().sum().backward()
            grads = dict(peer_state({n: q.grad for n, q in ours.named_parameters()}, gps))
            # relative to the largest gradient entry of the model: a bias that feeds a
            # training-mode BatchNorm has a true gradient of 0 (the norm removes it), and
            # both sides hold rounding noise there
            scale = max(float(q.grad.abs().max()) for q in peer.parameters())
            for n, q in peer.named_parameters():
                diff = float((grads[n] - q.grad).abs().max()) / scale
                grad_worst = max(grad_worst, diff)
        result[mode] = {"output_rel": worst, "grad_rel": grad_worst}
        print(
            f"{args.recipe} {mode}: outputs differ by {worst:.2e} (relative), gradients by "
            f"{grad_worst:.2e} (relative, worst parameter), over {len(batches)} batches"
        )
    return result


if __name__ == "__main__":
    main()
