#!/bin/bash
# Issue 23, seventh pass, before/after: main after the sixth pass (dcf8b36, exported to
# /tmp/base_dcf) against this pass (HEAD: 1-bit dropout masks at p = 0.5, the dense
# attention with fast dropout as one autograd node), alternating, same flags on both
# (--fast-dropout --fused: the recipes as they run); the default GT epoch's FLOP bound; every
# graphformer-bench row. The same commands as i23g_run.sh, with this pass's base and prefix.
BASE=/tmp/base_dcf TAG=i23i bash "$(dirname "$0")/i23g_run.sh"
