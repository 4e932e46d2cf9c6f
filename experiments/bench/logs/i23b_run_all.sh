#!/bin/bash
# Issue 23 helper: main (3938004) vs this branch, interleaved; then fast dropout; then graphformer-bench.
cd /work/wt-speed
PY=.venv/bin/python
L=experiments/bench/logs
ROWS=gatedgcn,cluster_gps,zinc_gps,loader_cluster,loader_mol,collate_cluster,collate_mol
ARGS="--rows $ROWS --rounds 3 --cluster-graphs 32 --mol-graphs 256"
for r in 1 2; do
  if [ $r = 1 ]; then ORDER="main new"; else ORDER="new main"; fi
  for side in $ORDER; do
    if [ $side = main ]; then TREE=/tmp/speed_main; else TREE=/work/wt-speed; fi
    echo "== round $r $side $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)"
    nice $PY experiments/bench/on_tree.py $TREE experiments/bench/recipes.py $ARGS --json $L/i23b_${side}_$r.json 2>&1 | grep -v USDT | tail -15
  done
done
echo "== fast dropout $(date -u +%T)"
GRAPHFORMER_FAST_DROPOUT=1 nice $PY experiments/bench/recipes.py --rows gatedgcn,cluster_gps --rounds 3 --cluster-graphs 32 --json $L/i23b_fast.json 2>&1 | grep -v USDT | tail -6
echo "== graphformer-bench $(date -u +%T)"
nice $PY experiments/bench/engine_compare.py --base /tmp/speed_main --rounds 2 -- --threads 2 --repeats 3 --nodes 50000 --edges 500000 2>&1 | tail -25
echo "== done $(date -u +%T)"
