"""The benchmark scripts still run (their tiny --smoke mode, in-process to skip a second torch import)."""
import importlib.util
import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(ROOT, "benchmarks")


@pytest.mark.parametrize("script", ["bench_delta_product.py", "bench_diagonal_scan.py"])
def test_benchmark_smoke(script, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(BENCH)
    spec = importlib.util.spec_from_file_location(f"_smoke_{script[:-3]}", os.path.join(BENCH, script))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    md = tmp_path / "RESULTS.md"
    mod.main(["--smoke", "--out", str(tmp_path), "--results-md", str(md)])
    files = [f for f in os.listdir(tmp_path) if f.endswith(".json")]
    assert len(files) == 1
    data = json.load(open(tmp_path / files[0]))
    for key in ("device", "dtype", "git_commit", "torch", "triton", "rows"):
        assert key in data
    assert data["smoke"] is True
    assert data["rows"] and all("error" not in r for r in data["rows"]), data["rows"]
    assert "| shape | provider |" in md.read_text()
