#!/bin/bash
# Issue 23, sixth pass: model.compile=true on the recipes that have graph-free parts to
# compile (the GPS recipes; the GatedGCN stack has none), against the same eager run, each
# beside its peer: 2 runs each, alternating.
cd /work/main
PY=.venv/bin/python
L=experiments/bench/logs
ARGS="--rows cluster_gps,zinc_gps --rounds 3 --cluster-graphs 32 --mol-graphs 256 --fast-dropout --fused"
for i in 1 2; do
  if [ $i = 1 ]; then ORDER="eager compiled"; else ORDER="compiled eager"; fi
  for side in $ORDER; do
    echo "== recipes $side $i $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)"
    if [ $side = compiled ]; then FLAG=--compile; else FLAG=; fi
    env -u OMP_WAIT_POLICY $PY experiments/bench/recipes.py $ARGS $FLAG --json $L/i23h_compile_${side}_$i.json
  done
done
echo "== done $(date -u +%T)"
