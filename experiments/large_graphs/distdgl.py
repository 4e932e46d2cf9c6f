"""DGL's own distributed engine (DistDGL) on localhost, under graphformer's DGL import hook:
partition a CSBM graph into 2 parts (METIS), start 2 graph servers (one per part, each its
own "machine" line in ip_config.txt on 127.0.0.1) and 2 trainers (one per part, gloo
process group), and train one epoch of a 2-layer GraphSAGE over DistNodeDataLoader blocks.

    python experiments/large_graphs/distdgl.py [--nodes 20000] [--work /tmp/distdgl]

Each process's output goes to <work>/<role><id>.log; the script prints them and exits with
the first non-zero status. What ran and what failed is recorded in
experiments/large_graphs/README.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

GRAPH = "csbm"


def partition(work: Path, nodes: int, parts: int) -> Path:
    import graphformer  # noqa: F401  (before DGL)
    from graphformer.data import ContextualSBMDataset

    import dgl

    config = work / f"parts{parts}" / f"{GRAPH}.json"
    if not config.is_file():
        graph = ContextualSBMDataset(num_nodes=nodes, feat_dim=16, root=work / "csbm")[0]
        dgl.distributed.partition_graph(
            graph, GRAPH, parts, config.parent, part_method="metis" if parts > 1 else "random"
        )
    return config


def stand_in_graphbolt_types() -> None:
    """``--patch``: DistDGL's server and client test ``isinstance(g, gb.FusedCSCSamplingGraph)``
    even without graphbolt; give the stand-in module that class (never instantiated), so
    the test is False. Experiment-only: graphformer's hook stays as it is."""
    import dgl.graphbolt as gb

    for name in ("FusedCSCSamplingGraph",):
        gb.__dict__[name] = type(name, (), {})


def server(args) -> None:
    import graphformer  # noqa: F401

    import dgl

    if args.patch:
        stand_in_graphbolt_types()

    if not args.private:
        dgl.distributed.initialize(os.environ["DGL_IP_CONFIG"])  # serves until trainers exit
        return
    # Both "machines" are this host: their shared-memory segments (named after the graph)
    # would collide, so each server keeps its partition private, as DGL's own tests do.
    server = dgl.distributed.DistGraphServer(
        int(os.environ["DGL_SERVER_ID"]),
        os.environ["DGL_IP_CONFIG"],
        int(os.environ["DGL_NUM_SERVER"]),
        int(os.environ["DGL_NUM_CLIENT"]),
        os.environ["DGL_CONF_PATH"],
        disable_shared_mem=True,
        graph_format=["csc", "coo"],
    )
    server.start()


def trainer(args) -> None:
    import graphformer  # noqa: F401

    import dgl
    import torch
    import torch.nn.functional as F
    from dgl.nn import SAGEConv

    if args.patch:
        stand_in_graphbolt_types()
    dgl.distributed.initialize(os.environ["DGL_IP_CONFIG"])
    torch.distributed.init_process_group("gloo")
    rank = torch.distributed.get_rank()
    if args.private:  # no shared memory to read the partition book from: load it
        part = rank % len(Path(os.environ["DGL_IP_CONFIG"]).read_text().split("\n")[:-1])
        book = dgl.distributed.load_partition_book(os.environ["DGL_CONF_PATH"], part)[0]
        graph = dgl.distributed.DistGraph(GRAPH, gpb=book)
    else:
        graph = dgl.distributed.DistGraph(GRAPH)
    seeds = dgl.distributed.node_split(graph.ndata["train_mask"], graph.get_partition_book())
    loader = dgl.dataloading.DistNodeDataLoader(
        graph, seeds, dgl.dataloading.NeighborSampler([10, 5]), batch_size=256, shuffle=True
    )
    layers = torch.nn.ModuleList([SAGEConv(16, 64, "mean"), SAGEConv(64, 5, "mean")])
    model = torch.nn.parallel.DistributedDataParallel(layers)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.003)
    start, steps, loss = time.perf_counter(), 0, None
    for input_nodes, output_nodes, blocks in loader:
        h = graph.ndata["feat"][input_nodes]
        for index, (layer, block) in enumerate(zip(model.module, blocks, strict=True)):
            h = layer(block, h)
            h = F.relu(h) if index == 0 else h
        loss = F.cross_entropy(h, graph.ndata["label"][output_nodes])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        steps += 1
    print(
        f"trainer {rank}: {len(seeds)} seeds of {graph.num_nodes()} nodes, {steps} steps, "
        f"last loss {loss.item():.4f}, {time.perf_counter() - start:.1f} s",
        flush=True,
    )
    torch.distributed.barrier()
    dgl.distributed.exit_client()


def launch(args) -> int:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    config = partition(work, args.nodes, args.parts)
    ip_config = work / "ip_config.txt"
    # One line per machine (= per part); --parts 1: one machine serving its part twice.
    ip_config.write_text("".join(f"127.0.0.1 {args.port + p}\n" for p in range(args.parts)))
    common = {
        **os.environ,
        "DGL_IP_CONFIG": str(ip_config),
        "DGL_CONF_PATH": str(config),
        "DGL_NUM_SERVER": str(2 // args.parts),
        "DGL_NUM_CLIENT": "2",
        "DGL_NUM_SAMPLER": "0",
        "DGL_GRAPH_FORMAT": "csc",
        "DGL_KEEP_ALIVE": "0",
        "OMP_NUM_THREADS": "1",
    }
    processes = []
    for part in range(2):  # server ids: machine * servers per machine + local index
        env = {**common, "DGL_ROLE": "server", "DGL_SERVER_ID": str(part)}
        log = open(work / f"server{part}.log", "w")  # noqa: SIM115  (open while it runs)
        command = [sys.executable, __file__, "server", "--work", str(work)]
        command += ["--patch"] if args.patch else []
        command += ["--private"] if args.private else []
        processes.append(
            (f"server{part}", subprocess.Popen(command, env=env, stdout=log, stderr=log))
        )
    time.sleep(3)
    for rank in range(2):
        env = {
            **common,
            "DGL_ROLE": "client",
            "DGL_DIST_MODE": "distributed",
            "DGL_GROUP_ID": "0",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(args.port + 10),
            "WORLD_SIZE": "2",
            "RANK": str(rank),
        }
        log = open(work / f"trainer{rank}.log", "w")  # noqa: SIM115
        command = [sys.executable, __file__, "trainer", "--work", str(work)]
        command += ["--patch"] if args.patch else []
        command += ["--private"] if args.private else []
        processes.append(
            (f"trainer{rank}", subprocess.Popen(command, env=env, stdout=log, stderr=log))
        )
    status = 0
    deadline = time.monotonic() + args.timeout
    for name, process in reversed(processes):  # trainers first, then the servers they stop
        try:
            code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            code = "timeout"
        print(f"--- {name}: exit {code}")
        print((work / f"{name}.log").read_text()[-3000:])
        if code != 0 and status == 0:
            status = 1
    return status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "role", nargs="?", default="launch", choices=("launch", "server", "trainer")
    )
    parser.add_argument("--nodes", type=int, default=20_000)
    parser.add_argument("--work", default="/tmp/distdgl")
    parser.add_argument("--port", type=int, default=30050)
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--parts", type=int, choices=(1, 2), default=2)
    parser.add_argument("--patch", action="store_true", help=stand_in_graphbolt_types.__doc__)
    parser.add_argument(
        "--private", action="store_true", help="servers without shared memory (one host)"
    )
    args = parser.parse_args()
    if args.role == "launch":
        sys.exit(launch(args))
    (server if args.role == "server" else trainer)(args)


if __name__ == "__main__":
    main()
