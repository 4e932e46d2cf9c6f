#!/usr/bin/env bash
# Two "nodes" on localhost: two torchrun launchers (--nnodes=2, --node_rank 0 and 1, one
# process each, master on 127.0.0.1) running the sampled node-level job through
# graphformer-train with Lightning's DDP (gloo on CPU). Lightning reads torchrun's
# environment (TorchElasticEnvironment): WORLD_SIZE=2, RANK, LOCAL_RANK, MASTER_ADDR/PORT.
# Each rank loads the CSBM graph from the shared disk cache and draws its own seeds
# (DGL's DataLoader(use_ddp=True)). Logs: experiments/large_graphs/logs/two_nodes_node{0,1}.log
#
#   bash experiments/large_graphs/two_nodes.sh [extra graphformer-train overrides]
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
LOGS=experiments/large_graphs/logs
PORT=${PORT:-29533}
mkdir -p "$LOGS"
export GRAPHFORMER_DATA_DIR=${GRAPHFORMER_DATA_DIR:-data} WANDB_MODE=offline OMP_NUM_THREADS=1
ARGS=(data=csbm model=gnn model.block.mixer=sage model.block.dim=64 trainer=ddp
      trainer.accelerator=cpu trainer.devices=1 trainer.num_nodes=2 trainer.max_epochs=2
      logger=csv callbacks.rich_progress_bar=null "$@")
# Generate the graph once before the ranks start (both would otherwise race to write it;
# the cache's atomic writes make that safe, but wasteful).
"$PY" -c "import graphformer.data as d; d.ContextualSBMDataset(root='$GRAPHFORMER_DATA_DIR/csbm')"
launch() {
    "$PY" -m torch.distributed.run --nnodes=2 --nproc_per_node=1 --node_rank="$1" \
        --master_addr=127.0.0.1 --master_port="$PORT" -m graphformer.train "${ARGS[@]}" \
        > "$LOGS/two_nodes_node$1.log" 2>&1
}
start=$(date +%s)
launch 1 & other=$!
launch 0
wait "$other"
echo "both nodes finished in $(( $(date +%s) - start )) s; logs in $LOGS/two_nodes_node{0,1}.log"
