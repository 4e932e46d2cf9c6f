"""Padded attention on the CPU: SDPA's flash kernel against the written-out formula
(``matmul``, ``softmax``, ``matmul``), issue 23's fourth pass. Not adopted: the written-out
form wins here up to ~192 keys and ~2M score cells (0.4–0.8× SDPA's time), but the default
graph Transformer's CLUSTER epoch ran 0.97× CPU / 1.03× wall with it (6 interleaved
epochs), so ``graphformer.nn.core.dense.padded_attention`` keeps SDPA without dropout
(experiments/bench/README.md).

For each head width D and sample length L: B samples of L nodes (B·H·L² ≈ 400k score
cells), 4 heads, forward + backward (``--eval``: forward only, no grad), with an additive
adjacency mask (0 on ~30 % of the cells and the diagonal, -inf elsewhere: the dense
engine's neighbourhood attention) or a boolean key-padding mask (full attention on samples
of L/2..L nodes). Each cell: best of two medians, written-out time ÷ SDPA's, interleaved
in one process.

    python experiments/bench/written_out.py --threads 2
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch
import torch.nn.functional as F


def timed(function, repeats: int = 10) -> float:
    function(), function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def written_out(q, k, v, mask):
    if mask.dtype == torch.bool:
        mask = torch.zeros(mask.shape, dtype=q.dtype).masked_fill_(~mask, -math.inf)
    scores = torch.matmul(q * (1.0 / math.sqrt(q.shape[-1])), k.transpose(-2, -1))
    return torch.matmul(torch.softmax(scores.add_(mask), dim=-1), v)


def ratio(length: int, width: int, mask_kind: str, train: bool) -> tuple[float, float]:
    heads = 4
    batch = max(1, 400_000 // (heads * length * length))
    q, k, v = (torch.randn(batch, heads, length, width, requires_grad=train) for _ in "qkv")
    if mask_kind == "adjacency":
        mask = torch.where(torch.rand(batch, 1, length, length) < 0.3, 0.0, -math.inf)
        mask[..., torch.arange(length), torch.arange(length)] = 0.0
    else:
        sizes = torch.randint(length // 2, length + 1, (batch, 1))
        mask = (torch.arange(length) < sizes).view(batch, 1, 1, length)
    grad = torch.randn(batch, heads, length, width)

    def run(attend):
        def once():
            out = attend(q, k, v, mask)
            if train:
                out.backward(grad)

        return once

    sdpa = run(lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m))
    ours = run(written_out)
    sdpa_s = min(timed(sdpa) for _ in range(2))
    ours_s = min(timed(ours) for _ in range(2))
    return ours_s / sdpa_s, sdpa_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--eval", action="store_true", help="forward only, no grad")
    parser.add_argument("--lengths", default="32,64,96,128,160,192,256,384")
    parser.add_argument("--widths", default="8,16,32,64")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lengths = [int(n) for n in args.lengths.split(",")]
    print(f"written-out ÷ SDPA, {'forward' if args.eval else 'forward + backward'}")
    for mask_kind in ("adjacency", "keys"):
        for width in (int(d) for d in args.widths.split(",")):
            cells = [ratio(n, width, mask_kind, not args.eval)[0] for n in lengths]
            row = " ".join(f"L{n} {r:.2f}" for n, r in zip(lengths, cells, strict=True))
            print(f"{mask_kind:9s} D {width:3d}: {row}", flush=True)


if __name__ == "__main__":
    main()
