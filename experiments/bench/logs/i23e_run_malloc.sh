#!/bin/bash
# Issue 23, fourth pass: HEAD with glibc malloc defaults and with no heap trimming / a fixed
# mmap threshold (environment), alternating: whether page faults of freed-and-refilled (E, d)
# tensors move the ratios. Inconclusive (README).
cd /work/main
ARGS="--rows gatedgcn,cluster_gps --rounds 3 --cluster-graphs 32 --fast-dropout --fused"
for i in 1 2; do
  echo "== default $i"
  .venv/bin/python experiments/bench/recipes.py $ARGS --json experiments/bench/logs/i23e_extra_new_$i.json 2>&1 | grep "cpu \|wall "
  echo "== malloc $i"
  MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=17179869184 .venv/bin/python experiments/bench/recipes.py $ARGS --json experiments/bench/logs/i23e_extra_malloc_$i.json 2>&1 | grep "cpu \|wall "
done
