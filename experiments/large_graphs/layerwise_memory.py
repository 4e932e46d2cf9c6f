"""Peak memory (and CPU time) of layer-wise against full-graph evaluation, per model.

One run = one fresh process: load (or generate once) a CSBM graph (mean degree 20, 64
features, 5 classes), build a model (seeded), then evaluate it on the whole graph in eval
mode without autograd, either ``full`` (``model(graph, x)``) or ``layerwise``
(:func:`graphformer.nn.layerwise.layerwise_inference`, chunks of ``--chunk`` destination
nodes). The evaluation's peak memory is the process's peak RSS during it (Linux: the peak
is reset through ``/proc/self/clear_refs`` just before, then read as ``VmHWM``) minus its
RSS just before (graph, features, model and interpreter). Prints one CSV row; ``all``
runs every (model, mode) in alternation and checks that both modes' outputs agree.

    python experiments/large_graphs/layerwise_memory.py run --model gat --mode layerwise
    python experiments/large_graphs/layerwise_memory.py all --nodes 200000 \\
        > experiments/large_graphs/layerwise_memory.csv
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

MODELS = ("sage", "gcn", "gat", "gatedgcn", "sgformer", "polynormer")
MODES = ("full", "layerwise")
HEADER = (
    "model,mode,nodes,edges,chunk,baseline_rss_gb,eval_peak_above_baseline_gb,eval_cpu_s,out_sum"
)


def _status(key: str) -> float:
    """``/proc/self/status``'s ``key`` (VmRSS, VmHWM) in GB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 2**20
    raise KeyError(key)


def build(name: str, in_dim: int):
    from graphformer.nn import GNN, BlockConfig, GraphTransformer, Polynormer, SGFormer

    import torch

    torch.manual_seed(0)
    if name in ("sage", "gcn"):
        return GNN(5, in_dim, BlockConfig(dim=128, mixer=name), num_layers=2)
    if name == "gat":
        return GNN(5, in_dim, BlockConfig(dim=128, mixer="gat", num_heads=4), num_layers=2)
    if name == "gatedgcn":
        return GraphTransformer(5, BlockConfig(dim=64, mixer="gatedgcn"), 2, in_dim=in_dim)
    if name == "sgformer":
        return SGFormer(5, in_dim, BlockConfig(dim=64, num_heads=1), num_layers=1)
    return Polynormer(5, in_dim, BlockConfig(dim=64, num_heads=1), num_layers=3, global_layers=2)


def run(nodes: int, name: str, mode: str, chunk: int, root: str, threads: int) -> str:
    import torch

    torch.set_num_threads(threads)
    import graphformer  # noqa: F401  (before DGL)
    from graphformer.data import ContextualSBMDataset
    from graphformer.data.field_cache import sample_graph
    from graphformer.nn.layerwise import layerwise_inference

    dataset = ContextualSBMDataset(
        num_nodes=nodes, avg_degree=20.0, feat_dim=64, homophily=0.7, root=root
    )
    graph = sample_graph(dataset[0])
    x = graph.ndata["feat"]
    model = build(name, x.shape[1]).eval()
    graph.create_formats_()  # DGL's sparse formats built before the measurement, both modes
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # reset the peak RSS (VmHWM) to the current RSS
    baseline = _status("VmRSS")
    start = time.process_time()
    with torch.no_grad():
        if mode == "full":
            out = model(graph, x)
        else:
            out = layerwise_inference(model, graph, x, chunk_size=chunk)
    cpu = time.process_time() - start
    peak = _status("VmHWM")
    row = (name, mode, nodes, graph.num_edges(), chunk, f"{baseline:.3f}")
    return ",".join(map(str, row)) + f",{peak - baseline:.3f},{cpu:.1f},{float(out.sum()):.6e}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("run", "all"))
    parser.add_argument("--nodes", type=int, default=200_000)
    parser.add_argument("--model", choices=MODELS, default="gat")
    parser.add_argument("--mode", choices=MODES, default="layerwise")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--chunk", type=int, default=8192)
    parser.add_argument("--root", default="data/csbm")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if args.what == "run":
        print(run(args.nodes, args.model, args.mode, args.chunk, args.root, args.threads))
        return
    print(HEADER, flush=True)
    common = ["--nodes", str(args.nodes), "--chunk", str(args.chunk), "--root", args.root]
    common += ["--threads", str(args.threads)]
    for name in args.models.split(","):
        for mode in MODES:
            command = [sys.executable, __file__, "run", "--model", name, "--mode", mode, *common]
            result = subprocess.run(command, capture_output=True, text=True, env=os.environ)
            if result.returncode:
                print(f"# {name} {mode} failed: {result.stderr[-2000:]}", flush=True)
            else:
                print(result.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
