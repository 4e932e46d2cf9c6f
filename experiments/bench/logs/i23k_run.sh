#!/bin/bash
# Issue 23, ninth pass, before/after: main after the eighth pass (928ebc1, exported to
# /tmp/base_928) against this pass (HEAD: the fused attention kernel for heads of width 16),
# alternating, same flags on both (--fast-dropout --fused: the recipes as they run); the
# default GT epoch's FLOP bound; every graphformer-bench row. The same commands as
# i23g_run.sh, with this pass's base and prefix.
BASE=/tmp/base_928 TAG=i23k bash "$(dirname "$0")/i23g_run.sh"
