"""One training step of a molecule recipe, graphformer vs its PyG peer: interleaved step
timings (CPU-time ratio, median over rounds) and a ``torch.profiler`` table per side.

Both sides are ``compare.py``'s models on the same batches of real molecules (the first
``--graphs`` training molecules of the recipe's dataset), one thread, the same seed::

    python experiments/molecules/profile_step.py --recipe zinc_logp_gine --graphs 320 \\
        --rounds 5 --profile
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import compare  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def step(model, optimizer, b: dict, regression: bool, clip: float) -> None:
    """Forward, loss, backward, clip, step: the timed loop of ``compare.py``."""
    optimizer.zero_grad(set_to_none=True)
    out = model(b)
    loss = F.l1_loss(out, b["y"].reshape(out.shape)) if regression else F.cross_entropy(out, b["y"])
    loss.backward()
    if clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default="zinc_logp_gine")
    parser.add_argument("--graphs", type=int, default=320, help="first N training molecules")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved passes over them")
    parser.add_argument("--profile", action="store_true", help="print torch.profiler tables")
    parser.add_argument("--rows", type=int, default=25, help="profiler table rows")
    parser.add_argument("--root", default="data")
    parser.add_argument("--override", action="append", default=[], help="Hydra override")
    parser.add_argument(
        "--peer-fused", action="store_true", help="the peer's AdamW fused too (as compare.py)"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    settings = compare.recipe_settings(args.recipe, args.override)
    graphs, labels, info = compare.load_split(
        settings, "train", args.graphs, Path(args.root) / "molecules"
    )
    batches = compare.make_batches(
        graphs, labels, settings["batch_size"], torch.arange(len(graphs))
    )
    regression = info.task == "regression"
    sides = {}
    for name in compare.MODELS:
        torch.manual_seed(0)
        model = compare.BUILD[name](settings, info.out_dim)
        fused = settings["fused"] and (name == "graphformer" or args.peer_fused)
        optimizer = torch.optim.AdamW(model.parameters(), lr=settings["lr"], fused=fused or None)
        model.train()
        sides[name] = (model, optimizer)
    for model, optimizer in sides.values():  # warm-up
        step(model, optimizer, batches[0], regression, settings["clip"])
    cpu = {name: [] for name in sides}
    for r in range(args.rounds):
        for b in batches:
            for name in compare.MODELS if r % 2 == 0 else compare.MODELS[::-1]:
                model, optimizer = sides[name]
                start = time.process_time()
                step(model, optimizer, b, regression, settings["clip"])
                cpu[name].append(time.process_time() - start)
    per_round = {
        name: [sum(values[i * len(batches) : (i + 1) * len(batches)]) for i in range(args.rounds)]
        for name, values in cpu.items()
    }
    ratios = [g / p for g, p in zip(per_round["graphformer"], per_round["pyg"], strict=True)]
    result = {
        "recipe": args.recipe,
        "graphs": len(graphs),
        "batches": len(batches),
        "ms_per_step": {n: 1e3 * statistics.median(v) for n, v in cpu.items()},
        "cpu_ratio_median": statistics.median(ratios),
        "cpu_ratio_range": (min(ratios), max(ratios)),
    }
    print(result, flush=True)
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        for name, (model, optimizer) in sides.items():
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                for b in batches:
                    step(model, optimizer, b, regression, settings["clip"])
            print(f"== {name}: {len(batches)} steps")
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))
    return result


if __name__ == "__main__":
    main()
