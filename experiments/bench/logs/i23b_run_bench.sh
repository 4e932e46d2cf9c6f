#!/bin/bash
# Issue 23 helper: graphformer-bench, main (3938004) and this branch alternating, fresh processes.
cd /work/wt-speed
L=experiments/bench/logs
for r in 1 2; do
  if [ $r = 1 ]; then ORDER="main new"; else ORDER="new main"; fi
  for side in $ORDER; do
    if [ $side = main ]; then TREE=/tmp/speed_main; else TREE=/work/wt-speed; fi
    echo "== bench round $r $side $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)"
    (cd $TREE && PYTHONPATH=$TREE nice /work/wt-speed/.venv/bin/python -c "import sys; from graphformer.bench import main; main(sys.argv[1:])" --threads 2 --repeats 3 --nodes 50000 --edges 500000 --json > /work/wt-speed/$L/i23b_bench_${side}_$r.json 2>/dev/null)
  done
done
echo "== done $(date -u +%T)"
