#!/bin/bash
# Issue 23, fifth pass: OMP_WAIT_POLICY. Same code (this pass's tree) run under the old default
# (OMP_WAIT_POLICY=PASSIVE, which graphformer set at import before this pass) and the new one
# (unset: libgomp's default, spin briefly then sleep), alternating, each in its own process:
# the recipe rows against their peers (the peers run under the same policy in the same
# process), the default GT epoch's FLOP bound, every graphformer-bench row, the main job.
cd /work/main
PY=.venv/bin/python
L=experiments/bench/logs
ARGS="--rows gatedgcn,cluster_gps,zinc_gps --rounds 3 --cluster-graphs 32 --mol-graphs 256 --fast-dropout --fused"
run() {  # run POLICY command...: POLICY "default" leaves the variable unset
  local policy=$1; shift
  if [ "$policy" = default ]; then env -u OMP_WAIT_POLICY "$@"; else env OMP_WAIT_POLICY=$policy "$@"; fi
}
for i in 1 2; do
  if [ $i = 1 ]; then ORDER="PASSIVE default"; else ORDER="default PASSIVE"; fi
  for p in $ORDER; do
    echo "== recipes $p $i $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)"
    run $p $PY experiments/bench/recipes.py $ARGS --json $L/i23f_recipes_${p}_$i.json
  done
done
for i in 1 2; do
  if [ $i = 1 ]; then ORDER="PASSIVE default"; else ORDER="default PASSIVE"; fi
  for p in $ORDER; do
    echo "== flop bound $p $i $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)"
    run $p $PY experiments/bench/flop_bound.py --graphs 1000 --rounds 2 --json $L/i23f_flop_${p}_$i.json
  done
done
for i in 1 2; do
  if [ $i = 1 ]; then ORDER="PASSIVE default"; else ORDER="default PASSIVE"; fi
  for p in $ORDER; do
    echo "== bench $p $i $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)"
    run $p $PY -m graphformer.bench --threads 2 --repeats 3 --nodes 50000 --edges 500000 --json > $L/i23f_bench_${p}_$i.json 2>/dev/null
  done
done
for i in 1 2; do
  if [ $i = 1 ]; then ORDER="PASSIVE default"; else ORDER="default PASSIVE"; fi
  for p in $ORDER; do
    echo "== main job (3 epochs) $p $i $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)"
    start=$(date +%s.%N)
    run $p .venv/bin/graphformer-train trainer.max_epochs=3 hydra.run.dir=/tmp/s22/mj_${p}_$i > /tmp/s22/mj_${p}_$i.log 2>&1
    echo "main job $p $i: $(echo "$(date +%s.%N) - $start" | bc) s; $(grep 'test/acc =' /tmp/s22/mj_${p}_$i.log)"
  done
done
echo "== done $(date -u +%T)"
