"""`tessera bench` (GDNBenchmarkSuite, GDNPerformanceAnalyzer, plots), ts.Profiler, ts.synchronize,
ts.get_device_count, ts.create_mesh and tessera.target_ir (DESIGN §15)."""
import copy
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import tessera as ts
from tessera.production.analysis import GDNPerformanceAnalyzer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    cmd = [sys.executable, "-m", "tessera", "bench", "--out", str(out), "--vocab", "32", "--hidden", "16",
           "--layers", "2", "--heads", "2", "--intermediate", "32", "--max-delta", "1", "--seq", "8",
           "--batch-sizes", "1,2,4", "--delta-distances", "0,1", "--iters", "3", "--warmup", "1", "--policy", "bf16"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    return out, r.stdout, json.load(open(out / "results.json"))


def test_bench_cli_writes_measured_tables_plots_and_recommendations(bench_run):
    out, stdout, results = bench_run
    (name, r), = results["individual_results"].items()
    assert sorted(r["throughput"], key=int) == ["1", "2", "4"]
    for t in r["throughput"].values():
        assert t["samples_per_second"] > 0 and t["latency"]["p50_ms"] <= t["latency"]["p99_ms"]
        assert t["memory"]["parameters"] > 0 and t["memory"]["peak_intermediates"] > 0 and t["memory"]["kernels"] > 0
    assert r["fusion"]["fused"]["kernels"] <= r["fusion"]["unfused"]["kernels"]
    assert sorted(r["delta_efficiency"], key=int) == ["0", "1"]
    assert r["delta_efficiency"]["0"]["delta_connections"] == 0 and r["delta_efficiency"]["1"]["delta_connections"] == 1
    assert 0.5 < r["accuracy"]["top1_agreement"] <= 1.0           # bf16 policy against f32
    assert abs(sum(k["share"] for k in r["kernels"].values()) - 1.0) < 1e-6
    assert "skipped" in r["scaling"]
    metrics = results["analysis"][name]["metrics"]
    best = max(r["throughput"], key=lambda b: r["throughput"][b]["samples_per_second"])
    assert metrics["optimal_batch_size"] == int(best)
    assert results["recommendations"][name] and all(rec in stdout for rec in results["recommendations"][name])
    report = (out / "report.md").read_text()
    assert "| batch | samples/s |" in report and "Fused vs unfused" in report
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(list(out.glob("*.png"))) == 2


def _synthetic(sps, delta_ms=(10.0, 11.0), kernels=None, peak=1 << 20, top1=1.0):
    return {"throughput": {b: {"samples_per_second": s, "latency": {"p50_ms": 10.0, "p99_ms": 12.0},
                               "memory": {"parameters": 1 << 20, "peak_intermediates": peak}}
                           for b, s in sps.items()},
            "delta_efficiency": {0: {"avg_time": delta_ms[0] / 1e3, "overhead_vs_no_deltas": 0.0},
                                 2: {"avg_time": delta_ms[1] / 1e3, "overhead_vs_no_deltas": delta_ms[1] / delta_ms[0] - 1}},
            "fusion": {"speedup": 1.3, "fused": {"kernels": 50}, "unfused": {"kernels": 80}},
            "kernels": kernels or {"gemm": {"calls": 10, "share": 0.2}},
            "accuracy": {"top1_agreement": top1, "max_abs_error": 0.1}}


def test_analyzer_recommendations_follow_the_measurements():
    a = GDNPerformanceAnalyzer()
    rising = a.analyze_performance_bottlenecks(_synthetic({1: 10.0, 2: 19.0, 4: 36.0}))
    flat = a.analyze_performance_bottlenecks(_synthetic({1: 10.0, 2: 19.0, 4: 19.5}))
    types = lambda an: {f["type"] for f in an["bottlenecks"]}  # noqa: E731
    assert "throughput_still_rising" in types(rising) and "throughput_plateau" in types(flat)
    assert any("batch 4" in r and "+89%" in r for r in rising["recommendations"])
    assert any("Cap the serving batch near 2" in r for r in flat["recommendations"])
    assert rising["metrics"]["optimal_batch_size"] == 4 and flat["metrics"]["optimal_batch_size"] == 4
    heavy = a.analyze_performance_bottlenecks(_synthetic({1: 10.0, 2: 19.0}, delta_ms=(10.0, 15.0),
                                                         kernels={"strided_copy4": {"calls": 40, "share": 0.4}},
                                                         peak=8 << 20, top1=0.9))
    assert {"high_delta_overhead", "hot_kernel", "activation_memory", "policy_accuracy"} <= types(heavy)
    assert any("cost 50%" in r for r in heavy["recommendations"])
    assert any("strided_copy4 takes 40%" in r for r in heavy["recommendations"])
    light = a.analyze_performance_bottlenecks(_synthetic({1: 10.0, 2: 19.0}, peak=1 << 18))
    assert not {"high_delta_overhead", "hot_kernel", "activation_memory", "policy_accuracy"} & types(light)
    plan = a.generate_optimization_plan(heavy)
    assert plan["actions"][0].startswith("delta connections")


def test_profiler_records_each_launch():
    @ts.function
    def f(x, w):
        return ts.ops.softmax(ts.gemm(x, w) * 2.0)
    x, w = np.ones((8, 16), np.float32), np.ones((16, 8), np.float32)
    f(x, w)
    with ts.Profiler() as outer:
        f(x, w)
        with ts.Profiler() as inner:
            f(x, w)
        ts.synchronize()
    assert len(inner.records) > 0 and len(outer.records) == len(inner.records)   # the innermost profiler records
    assert {"calls", "seconds", "bytes"} <= set(next(iter(outer.summary().values())))
    assert any(k.startswith("gemm") for k in outer.summary())
    assert all(b > 0 for _, _, _, b in outer.records) and "launches" in outer.table()


def test_device_count_mesh_and_target_ir():
    assert ts.get_device_count() >= 0
    mesh = ts.create_mesh(axes=("dp",), shape=(1,))
    assert tuple(mesh.axes) == ("dp",) and tuple(mesh.shape) == (1,)
    from tessera import target_ir
    h = target_ir.describe("sm_90")
    assert h.name == "sm_90a" and "wgmma" in h.features and h.shared_memory_per_block == 227 * 1024
    assert "wgmma" not in target_ir.describe("sm_80").features
    assert target_ir.describe("cpu").kind == "cpu" and "cpu" in target_ir.available()
    with pytest.raises(ts.TesseraError, match="unknown target"):
        target_ir.describe("sm_75")


def test_bench_configuration_errors():
    from tessera.gdn import GDNConfig, ProductionGDNModel
    from tessera.production.bench import GDNBenchmarkSuite
    model = ProductionGDNModel(GDNConfig(vocab_size=32, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                         intermediate_size=32, max_delta_distance=0, delta_hidden_size=8,
                                         gating_hidden_size=8))
    with pytest.raises(ts.TesseraError, match="unknown keys"):
        GDNBenchmarkSuite().run_full_benchmark(model, [{"sequence_lenght": 8}])
    with pytest.raises(ts.TesseraError, match="exceeds max_tokens"):
        GDNBenchmarkSuite().run_full_benchmark(model, [{"sequence_length": 8, "max_tokens": 4, "batch_sizes": [1]}])
    assert copy.copy(model) is not model
