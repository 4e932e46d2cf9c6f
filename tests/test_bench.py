"""graphformer-bench runs end to end at tiny sizes and reports every case (no timing asserted)."""

from __future__ import annotations

import json
import sys

from graphformer.bench import main, peak_extra_bytes

import pytest
import torch


def test_bench_json_lists_every_case_with_ratios(capsys):
    tiny = {"nodes": 200, "edges": 1000, "graphs": 3, "complete-nodes": 8, "batch-size": 2,
            "repeats": 1, "warmup": 0, "gcn-dim": 8}  # fmt: skip
    main([*(f"--{key}={value}" for key, value in tiny.items()), "--fallback", "--json"])
    rows = json.loads(capsys.readouterr().out)
    groups = {row["group"] for row in rows}
    assert groups == {
        "sparse attention",
        "GCN",
        "complete graph 3 × 8",
        "complete graph 3 × (4–7)",
        "neighbourhood attention, CLUSTER × 2",
        "end to end",
    }
    for row in rows:
        assert row["seconds"] > 0
        assert ("ratio" in row) != ("graphs_per_second" in row)
        assert row["peak_bytes"] is None or row["peak_bytes"] >= 0
    fallbacks = {row["group"] for row in rows if "torch fallback" in row["case"]}
    assert fallbacks == {"GCN", "sparse attention"}
    firsts = {}
    for row in rows:
        firsts.setdefault(row["group"], row)
    assert all(row.get("ratio", 1.0) == 1.0 for row in firsts.values())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_peak_memory_counts_what_a_step_allocates():
    def step():
        torch.ones(64 * 2**20 // 4).sum()  # 64 MiB, written so its pages are resident

    assert 60 * 2**20 <= peak_extra_bytes(step, "cpu") <= 100 * 2**20
    assert peak_extra_bytes(lambda: None, "cpu") < 8 * 2**20


def test_bench_leaves_out_dgl_rows_where_dgl_cannot_run(capsys, monkeypatch):
    """As on a GPU with PyPI's CPU-only DGL: graphformer's rows still run (fallback)."""
    monkeypatch.setattr("graphformer.bench.dgl_runs_on", lambda device: False)
    tiny = ["--nodes=50", "--edges=200", "--graphs=2", "--complete-nodes=4", "--batch-size=2"]
    main([*tiny, "--repeats=1", "--warmup=0", "--gcn-dim=4", "--json"])
    captured = capsys.readouterr()
    cases = {row["case"] for row in json.loads(captured.out)}
    assert "DGL cannot run on cpu" in captured.err
    assert not any(case.startswith("DGL") or "DGL engine" in case for case in cases)
    assert {"graphformer MultiHeadAttention", "graphformer GCNConv"} <= cases


def test_help_describes_each_option_with_its_default(capsys):
    """It described no option and showed no default."""
    with pytest.raises(SystemExit):
        main(["--help"])
    shown = capsys.readouterr().out
    assert "forward + backward times" in shown
    assert "nodes of the random sparse graph (default: 100000)" in shown
    assert "timed runs per case (the median is shown) (default: 5)" in shown
