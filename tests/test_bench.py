"""graphformer-bench runs end to end at tiny sizes and reports every case (no timing asserted)."""

from __future__ import annotations

import json

from graphformer.bench import main


def test_bench_json_lists_every_case_with_ratios(capsys):
    tiny = {"nodes": 200, "edges": 1000, "graphs": 3, "complete-nodes": 8, "batch-size": 2,
            "repeats": 1, "warmup": 0, "gcn-dim": 8}  # fmt: skip
    main([*(f"--{key}={value}" for key, value in tiny.items()), "--json"])
    rows = json.loads(capsys.readouterr().out)
    groups = {row["group"] for row in rows}
    assert groups == {
        "sparse attention",
        "GCN",
        "complete graph 3 × 8",
        "complete graph 3 × (4–7)",
        "end to end",
    }
    for row in rows:
        assert row["seconds"] > 0
        assert ("ratio" in row) != ("graphs_per_second" in row)
    firsts = {}
    for row in rows:
        firsts.setdefault(row["group"], row)
    assert all(row.get("ratio", 1.0) == 1.0 for row in firsts.values())
