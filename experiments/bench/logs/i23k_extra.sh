#!/bin/bash
# Issue 23, ninth pass: more rounds of the two narrowly met targets on this pass's tree
# (the default GT epoch's FLOP bound, the zinc_gps recipe), after i23k_run.sh.
cd /work/main
PY=.venv/bin/python
L=experiments/bench/logs
for i in 1 2; do
  echo "== flop bound $i $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)"
  env -u OMP_WAIT_POLICY $PY experiments/bench/flop_bound.py --graphs 1000 --rounds 3 --json $L/i23k_extra_flop_$i.json
  echo "== recipes zinc_gps $i $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)"
  env -u OMP_WAIT_POLICY $PY experiments/bench/recipes.py --rows zinc_gps --rounds 3 --mol-graphs 256 --fast-dropout --fused --json $L/i23k_extra_recipes_$i.json
done
echo "== done $(date -u +%T)"
