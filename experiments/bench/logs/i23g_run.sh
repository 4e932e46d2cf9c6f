#!/bin/bash
# Issue 23, fifth pass, before/after: main before this pass (72fa862, exported to /tmp/base_72,
# which sets OMP_WAIT_POLICY=PASSIVE at import as it always did) against this pass (HEAD:
# libgomp's default wait policy, the size-group cost rule), alternating, same flags on both
# (--fast-dropout --fused: the recipes as they run); the default GT epoch's FLOP bound; every
# graphformer-bench row. Later passes rerun it with another BASE and TAG (i23h_run.sh).
cd /work/main
PY=.venv/bin/python
L=experiments/bench/logs
BASE=${BASE:-/tmp/base_72}
TAG=${TAG:-i23g}  # the log files' prefix
ARGS="--rows gatedgcn,cluster_gps,zinc_gps,loader_cluster,loader_mol --rounds 3 --cluster-graphs 32 --mol-graphs 256 --fast-dropout --fused"
for i in 1 2; do
  if [ $i = 1 ]; then ORDER="base new"; else ORDER="new base"; fi
  for side in $ORDER; do
    echo "== recipes $side $i $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)"
    if [ $side = base ]; then
      env -u OMP_WAIT_POLICY $PY experiments/bench/on_tree.py $BASE experiments/bench/recipes.py $ARGS --json $L/${TAG}_recipes_base_$i.json
    else
      env -u OMP_WAIT_POLICY $PY experiments/bench/recipes.py $ARGS --json $L/${TAG}_recipes_new_$i.json
    fi
  done
done
for i in 1 2; do
  if [ $i = 1 ]; then ORDER="base new"; else ORDER="new base"; fi
  for side in $ORDER; do
    echo "== flop bound $side $i $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)"
    if [ $side = base ]; then
      env -u OMP_WAIT_POLICY $PY experiments/bench/on_tree.py $BASE experiments/bench/flop_bound.py --graphs 1000 --rounds 2 --json $L/${TAG}_flop_base_$i.json
    else
      env -u OMP_WAIT_POLICY $PY experiments/bench/flop_bound.py --graphs 1000 --rounds 2 --json $L/${TAG}_flop_new_$i.json
    fi
  done
done
for i in 1 2; do
  if [ $i = 1 ]; then ORDER="base new"; else ORDER="new base"; fi
  for side in $ORDER; do
    if [ $side = base ]; then TREE=$BASE; else TREE=/work/main; fi
    echo "== bench $side $i $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)"
    env -u OMP_WAIT_POLICY $PY experiments/bench/on_tree.py $TREE $TREE/graphformer/bench.py --threads 2 --repeats 3 --nodes 50000 --edges 500000 --json > $L/${TAG}_bench_${side}_$i.json 2>/dev/null
  done
done
echo "== done $(date -u +%T)"
