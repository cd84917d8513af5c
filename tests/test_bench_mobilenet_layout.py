"""Smoke test of scripts/bench_mobilenet_layout.py on a tiny batch: the JSON it prints (no timing assertions)."""

from __future__ import annotations

import importlib.util
import json

import pytest
from conftest import REPO_ROOT


def test_prints_one_row_per_keep_resolution(capsys):
    spec = importlib.util.spec_from_file_location("bench_layout", REPO_ROOT / "scripts" / "bench_mobilenet_layout.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.main(
        ["--keep-resolution", "0", "1", "--batch", "2", "--size", "32", "--warmup", "0", "--repeats", "1"]
    )
    assert json.loads(capsys.readouterr().out) == result
    assert [r["keep_resolution"] for r in result["results"]] == [0, 1]
    for row in result["results"]:
        assert row["nchw_ms_per_step"] > 0 and row["channels_last_ms_per_step"] > 0
        # the ratio is of the unrounded times; the printed times are rounded to 0.1 ms
        expected = row["nchw_ms_per_step"] / row["channels_last_ms_per_step"]
        assert row["ratio_channels_last_vs_nchw"] == pytest.approx(expected, rel=0.2)
