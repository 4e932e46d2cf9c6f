#!/bin/bash
# Issue 23, sixth pass, before/after: main after the fifth pass (3e6d2b8, exported to
# /tmp/base_3e6) against this pass (HEAD: dense attention on head-major blocks, fast
# dropout's mask converted as uint8), alternating, same flags on both (--fast-dropout
# --fused: the recipes as they run); the default GT epoch's FLOP bound; every
# graphformer-bench row.
# The same commands as i23g_run.sh, with this pass's base and log prefix.
BASE=/tmp/base_3e6 TAG=i23h bash "$(dirname "$0")/i23g_run.sh"
