#!/bin/bash
# Issue 23 helper: GatedGCN recipes against their peers, this branch, fast dropout off and on alternating.
cd /work/wt-speed
L=experiments/bench/logs
for r in 1; do
  if [ $r = 1 ]; then ORDER="0 1"; else ORDER="1 0"; fi
  for fast in $ORDER; do
    echo "== round $r fast=$fast $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)"
    GRAPHFORMER_FAST_DROPOUT=$fast nice .venv/bin/python experiments/bench/recipes.py --rows gatedgcn,cluster_gps --rounds 3 --cluster-graphs 32 --json $L/i23b_fast${fast}_$r.json 2>&1 | grep -v USDT | tail -5
  done
done
echo "== done $(date -u +%T)"
