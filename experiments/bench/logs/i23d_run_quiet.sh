#!/bin/bash
# Issue 23, third pass: the recipe rows before (da6e4c8: torch's AdamW, nn.Dropout/SDPA masks, as
# its recipes ran) and after (HEAD: --fast-dropout --fused, as its recipes run), alternating, on
# the machine with no other job of this session; then the default GT epoch's FLOP bound.
cd /work/main
PY=.venv/bin/python
L=experiments/bench/logs
ARGS="--rows gatedgcn,cluster_gps,zinc_gps --rounds 3 --cluster-graphs 32 --mol-graphs 256"
for i in 1 2; do
  echo "== base $i $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)"
  $PY experiments/bench/on_tree.py /tmp/base_da6 experiments/bench/recipes.py $ARGS --json $L/i23d_base_$i.json
  echo "== new $i $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)"
  $PY experiments/bench/recipes.py $ARGS --fast-dropout --fused --json $L/i23d_new_$i.json
done
echo "== flop bound $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)"
$PY experiments/bench/flop_bound.py --graphs 1000 --rounds 3 --json $L/flop_bound_quiet.json
echo "== done $(date -u +%T)"
