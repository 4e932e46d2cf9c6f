#!/bin/bash
# Issue 23 helper: loader/collate rows, main (3938004) vs this branch, alternating, bigger sizes.
cd /work/wt-speed
PY=.venv/bin/python
L=experiments/bench/logs
ARGS="--rows loader_mol,loader_cluster,collate_mol,collate_cluster --rounds 7 --cluster-graphs 512 --mol-graphs 2048"
for r in 1 2; do
  if [ $r = 1 ]; then ORDER="main new"; else ORDER="new main"; fi
  for side in $ORDER; do
    if [ $side = main ]; then TREE=/tmp/speed_main; else TREE=/work/wt-speed; fi
    echo "== round $r $side $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)"
    nice $PY experiments/bench/on_tree.py $TREE experiments/bench/recipes.py $ARGS --json $L/i23b_loader_${side}_$r.json 2>&1 | grep -v USDT | tail -9
  done
done
echo "== done $(date -u +%T)"
