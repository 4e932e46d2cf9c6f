#!/bin/bash
# before (da6e4c8, recipes as they were: torch's AdamW, no fast dropout) vs after (HEAD: fused AdamW, fast dropout), alternating
cd /work/main
PY=.venv/bin/python
ARGS="--rows gatedgcn,cluster_gps,zinc_gps --rounds 3 --cluster-graphs 32 --mol-graphs 256"
for i in 1 2; do
  $PY experiments/bench/on_tree.py /tmp/base_da6 experiments/bench/recipes.py $ARGS --json experiments/bench/logs/i23c_base_$i.json
  $PY experiments/bench/recipes.py $ARGS --fast-dropout --fused --json experiments/bench/logs/i23c_new_$i.json
done
