#!/bin/bash
# Issue 23, eighth pass, before/after: main after the seventh pass (b6d0b1e, exported to
# /tmp/base_b6d) against this pass (HEAD: the torch engine's index_select gathers, the
# per-batch dense layout, the GatedGCN / GATConv engine rules), alternating, same flags on
# both (--fast-dropout --fused: the recipes as they run); the default GT epoch's FLOP bound;
# every graphformer-bench row. The same commands as i23g_run.sh, with this pass's base and prefix.
BASE=/tmp/base_b6d TAG=i23j bash "$(dirname "$0")/i23g_run.sh"
