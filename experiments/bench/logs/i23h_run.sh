#!/bin/bash
# Issue 23, sixth pass, before/after: main after the fifth pass (3e6d2b8, exported to
# /tmp/base_3e6) against this pass (HEAD: dense attention on head-major blocks, fast
# dropout's mask converted as uint8), alternating, same flags on both (--fast-dropout
# --fused: the recipes as they run); the default GT epoch's FLOP bound; every
# graphformer-bench row.
cd /work/main
PY=.venv/bin/python
L=experiments/bench/logs
BASE=/tmp/base_3e6
ARGS="--rows gatedgcn,cluster_gps,zinc_gps,loader_cluster,loader_mol --rounds 3 --cluster-graphs 32 --mol-graphs 256 --fast-dropout --fused"
for i in 1 2; do
  if [ $i = 1 ]; then ORDER="base new"; else ORDER="new base"; fi
  for side in $ORDER; do
    echo "== recipes $side $i $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)"
    if [ $side = base ]; then
      env -u OMP_WAIT_POLICY $PY experiments/bench/on_tree.py $BASE experiments/bench/recipes.py $ARGS --json $L/i23h_recipes_base_$i.json
    else
      env -u OMP_WAIT_POLICY $PY experiments/bench/recipes.py $ARGS --json $L/i23h_recipes_new_$i.json
    fi
  done
done
for i in 1 2; do
  if [ $i = 1 ]; then ORDER="base new"; else ORDER="new base"; fi
  for side in $ORDER; do
    echo "== flop bound $side $i $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)"
    if [ $side = base ]; then
      env -u OMP_WAIT_POLICY $PY experiments/bench/on_tree.py $BASE experiments/bench/flop_bound.py --graphs 1000 --rounds 2 --json $L/i23h_flop_base_$i.json
    else
      env -u OMP_WAIT_POLICY $PY experiments/bench/flop_bound.py --graphs 1000 --rounds 2 --json $L/i23h_flop_new_$i.json
    fi
  done
done
for i in 1 2; do
  if [ $i = 1 ]; then ORDER="base new"; else ORDER="new base"; fi
  for side in $ORDER; do
    if [ $side = base ]; then TREE=$BASE; else TREE=/work/main; fi
    echo "== bench $side $i $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)"
    env -u OMP_WAIT_POLICY $PY experiments/bench/on_tree.py $TREE $TREE/graphformer/bench.py --threads 2 --repeats 3 --nodes 50000 --edges 500000 --json > $L/i23h_bench_${side}_$i.json 2>/dev/null
  done
done
echo "== done $(date -u +%T)"
