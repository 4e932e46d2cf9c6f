#!/bin/bash
# Issue 23, fourth pass: the gatedgcn row again, base (f2852f0) and HEAD alternating, 3 runs each.
cd /work/main
PY=.venv/bin/python
L=experiments/bench/logs
ARGS="--rows gatedgcn --rounds 3 --cluster-graphs 32 --fast-dropout --fused"
for i in 1 2 3; do
  echo "== base $i $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)"
  $PY experiments/bench/on_tree.py /tmp/base_f28 experiments/bench/recipes.py $ARGS --json $L/i23e_gg_base_$i.json
  echo "== new $i $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)"
  $PY experiments/bench/recipes.py $ARGS --json $L/i23e_gg_new_$i.json
done
echo "== done $(date -u +%T)"
