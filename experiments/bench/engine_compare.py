"""Issue 18 speed check: ``graphformer-bench`` (and a decoder case it lacks) on two trees,
run alternately in fresh processes with the same settings, so both meet the same load.

    python experiments/bench/engine_compare.py --base /path/to/old/tree --rounds 2

Each round runs the base tree, then this one (``PYTHONPATH`` points each process at its
tree). Prints, per bench row, the median over rounds of each tree's median seconds, the
new/base ratio of those, and the per-round ratios. Bench arguments after ``--`` are passed
through (default: ``--threads 2 --repeats 5``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[2]

#: Dense decoder (auto engine: padded SDPA, is_causal + key-padding mask), forward+backward.
DECODER = r"""
import json, sys, time, torch
import graphformer
from graphformer.nn.models.decoder import TransformerDecoder
torch.set_num_threads(2)
torch.manual_seed(0)
sizes = torch.randint(20, 60, (64,)); memory_sizes = torch.randint(20, 60, (64,))
decoder = TransformerDecoder(64, num_layers=2, num_heads=4)
x = torch.randn(int(sizes.sum()), 64, requires_grad=True)
memory = torch.randn(int(memory_sizes.sum()), 64, requires_grad=True)
times = []
for i in range(8):
    start = time.perf_counter()
    decoder(x, sizes, memory, memory_sizes).square().mean().backward()
    times.append(time.perf_counter() - start)
print(json.dumps([{"group": "decoder", "case": "TransformerDecoder dense (64 x 20-59)",
                   "seconds": sorted(times[2:])[len(times[2:]) // 2]}]))
"""


def run(tree: Path, bench_args: list[str]) -> dict[str, float]:
    def rows_of(*args: str) -> list[dict]:
        env = {**os.environ, "PYTHONPATH": str(tree)}
        command = [sys.executable, *args]
        out = subprocess.run(command, env=env, capture_output=True, text=True, check=True, cwd=tree)
        return json.loads(out.stdout)

    code = "import sys; from graphformer.bench import main; main(sys.argv[1:])"
    rows = rows_of("-c", code, *bench_args, "--json") + rows_of("-c", DECODER)
    return {f"{r['group']} | {r['case']}": r["seconds"] for r in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("bench", nargs="*", default=["--threads", "2", "--repeats", "5"])
    args = parser.parse_args()
    base, new = [], []
    for round_ in range(args.rounds):
        base.append(run(args.base, args.bench))
        new.append(run(HERE, args.bench))
        print(f"round {round_ + 1} done", file=sys.stderr)
    print("| row | base s | new s | new/base | per-round ratios |")
    print("|---|---:|---:|---:|---|")
    for key in base[0]:
        b = statistics.median(r[key] for r in base)
        n = statistics.median(r[key] for r in new)
        rounds = " ".join(f"{nr[key] / br[key]:.2f}" for br, nr in zip(base, new, strict=True))
        print(f"| {key} | {b:.4f} | {n:.4f} | {n / b:.2f} | {rounds} |")


if __name__ == "__main__":
    main()
