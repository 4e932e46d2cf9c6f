#!/bin/bash
# Issue 23, fourth pass: before (f2852f0, exported to /tmp/base_f28) and after (HEAD) alternating,
# same flags on both (--fast-dropout --fused: the recipes as they run); then the default GT
# epoch's FLOP bound (flop_bound.py of HEAD, which counts flash attention once, on both trees);
# the written-out attention grid; every graphformer-bench row.
cd /work/main
PY=.venv/bin/python
L=experiments/bench/logs
ARGS="--rows gatedgcn,cluster_gps,zinc_gps --rounds 3 --cluster-graphs 32 --mol-graphs 256 --fast-dropout --fused"
for i in 1 2; do
  echo "== recipes base $i $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)"
  $PY experiments/bench/on_tree.py /tmp/base_f28 experiments/bench/recipes.py $ARGS --json $L/i23e_base_$i.json
  echo "== recipes new $i $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)"
  $PY experiments/bench/recipes.py $ARGS --json $L/i23e_new_$i.json
done
for i in 1 2; do
  echo "== flop bound base $i $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)"
  $PY experiments/bench/on_tree.py /tmp/base_f28 experiments/bench/flop_bound.py --graphs 1000 --rounds 2 --json $L/i23e_flop_base_$i.json
  echo "== flop bound new $i $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)"
  $PY experiments/bench/flop_bound.py --graphs 1000 --rounds 2 --json $L/i23e_flop_new_$i.json
done
echo "== written out $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)"
$PY experiments/bench/written_out.py --threads 2
for r in 1 2; do
  if [ $r = 1 ]; then ORDER="base new"; else ORDER="new base"; fi
  for side in $ORDER; do
    if [ $side = base ]; then TREE=/tmp/base_f28; else TREE=/work/main; fi
    echo "== bench round $r $side $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)"
    $PY experiments/bench/on_tree.py $TREE $TREE/graphformer/bench.py --threads 2 --repeats 3 --nodes 50000 --edges 500000 --json > $L/i23e_bench_${side}_$r.json 2>/dev/null
  done
done
echo "== done $(date -u +%T)"
