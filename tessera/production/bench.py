"""Seed 002's `GDNBenchmarkSuite` (and `tessera bench`): measured throughput vs batch size, latency
percentiles, memory, fused vs unfused graphs, delta-connection cost, accuracy of a numerics policy and a
per-kernel profile, written as JSON, a Markdown table and matplotlib plots.

    suite = GDNBenchmarkSuite()
    results = suite.run_full_benchmark(model, [{"name": "tiny", "sequence_length": 16, "batch_sizes": [1, 2, 4]}])
    suite.write_report(results, "bench_out/")      # results.json, report.md, *.png

Every number comes from timing compiled variants here (time.perf_counter around the call, after warm-up
runs that also compile); nothing is estimated. Multi-GPU scaling is measured only with two or more GPUs
(ts.get_device_count()); otherwise the result says it was skipped and why."""
from __future__ import annotations

import json
import os
import resource
import time

import numpy as np

from ..errors import CompilationError, located

DEFAULTS = {"sequence_length": 16, "batch_sizes": [1, 2, 4, 8], "max_tokens": 32768, "warmup": 2,
            "iterations": 10, "benchmark_batch_size": None, "delta_distances": [0, 1, 2], "target": "cpu",
            "numerics_policy": None, "seed": 0}


def _percentiles(times):
    t = np.asarray(times) * 1e3
    return {"p50_ms": float(np.percentile(t, 50)), "p90_ms": float(np.percentile(t, 90)),
            "p99_ms": float(np.percentile(t, 99)), "mean_ms": float(t.mean()), "std_ms": float(t.std())}


def configure_delta_connections(model, max_delta_distance):
    """A copy of a TesseraGDNModel with another max_delta_distance; the parameters both have are shared."""
    import dataclasses
    from ..gdn.modules import TesseraGDNModel
    if not isinstance(model, TesseraGDNModel):
        raise located(CompilationError, f"delta benchmarks need a TesseraGDNModel, got {type(model).__name__}")
    config = dataclasses.replace(model.config, max_delta_distance=max_delta_distance)
    variant = type(model)(config)
    state = model.state_dict()
    variant.load_state_dict({k: v for k, v in state.items() if k in variant.state_dict()}, strict=False)
    return variant


class GDNBenchmarkSuite:
    def __init__(self, log=None):
        self.log = log or (lambda msg: None)

    # -- helpers -------------------------------------------------------------------------------------------
    def compile_for_benchmark(self, model, config, batch_size, **overrides):
        import tessera as ts
        from ..frontend.function_options import CompilationConfig
        cc = CompilationConfig(target_architecture=config["target"], batch_size=batch_size,
                               numerics_policy=config["numerics_policy"], **overrides)
        return ts.compile(model, input_shapes={"input_ids": ["batch", config["sequence_length"]]}, config=cc)

    def generate_test_inputs(self, batch_size, sequence_length, config, vocab_size):
        rng = np.random.default_rng(config["seed"])
        return rng.integers(0, vocab_size, (batch_size, sequence_length)).astype(np.int32)

    def _time(self, compiled, ids, config):
        import tessera as ts
        for _ in range(config["warmup"]):
            compiled(ids)
            ts.synchronize()
        times = []
        for _ in range(config["iterations"]):
            t0 = time.perf_counter()
            compiled(ids)
            ts.synchronize()
            times.append(time.perf_counter() - t0)
        return times

    # -- the benchmarks --------------------------------------------------------------------------------------
    def benchmark_throughput(self, model, config):
        """{batch: {avg_time, std_time, samples_per_second, tokens_per_second, latency percentiles, memory}}."""
        S, vocab = config["sequence_length"], model.config.vocab_size
        out = {}
        for b in config["batch_sizes"]:
            if b * S > config["max_tokens"]:
                continue
            cm = self.compile_for_benchmark(model, config, b)
            times = self._time(cm, self.generate_test_inputs(b, S, config, vocab), config)
            avg = float(np.mean(times))
            mem = cm.get_memory_usage()
            out[b] = {"avg_time": avg, "std_time": float(np.std(times)), "samples_per_second": b / avg,
                      "tokens_per_second": b * S / avg, "latency": _percentiles(times),
                      "memory": {**mem, "kernels": cm.compiled_function().plan.kernel_count}}
            self.log(f"  batch {b:3d}: {b / avg:9.1f} samples/s  p50 {out[b]['latency']['p50_ms']:.2f} ms")
        return out

    def benchmark_memory_usage(self, throughput):
        """Per batch: parameter bytes, peak live intermediates of the plan, and this process's peak RSS."""
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024   # Linux reports KiB
        return {"per_batch": {b: r["memory"] for b, r in throughput.items()}, "process_peak_rss_bytes": int(rss)}

    def benchmark_fusion(self, model, config, batch):
        """The default graph pipeline (delta fusion, pruning, gating epilogues) vs optimization_level="none"."""
        from .optimizations import OptimizeGatingNetworks
        ids = self.generate_test_inputs(batch, config["sequence_length"], config, model.config.vocab_size)
        out = {}
        for name, m, overrides in (("fused", OptimizeGatingNetworks().apply(model), {}),
                                   ("unfused", model, {"optimization_level": "none"})):
            cm = self.compile_for_benchmark(m, config, batch, **overrides)
            times = self._time(cm, ids, config)
            out[name] = {"avg_time": float(np.mean(times)), "kernels": cm.compiled_function().plan.kernel_count,
                         "latency": _percentiles(times)}
        out["speedup"] = out["unfused"]["avg_time"] / out["fused"]["avg_time"]
        return out

    def benchmark_delta_efficiency(self, model, config, batch):
        """Time per max_delta_distance (0 = no delta connections, the baseline)."""
        ids = self.generate_test_inputs(batch, config["sequence_length"], config, model.config.vocab_size)
        out = {}
        layers = model.config.num_hidden_layers
        for d in sorted({min(d, max(layers - 1, 0)) for d in config["delta_distances"]}):
            variant = configure_delta_connections(model, d)
            cm = self.compile_for_benchmark(variant, config, batch)
            times = self._time(cm, ids, config)
            out[d] = {"avg_time": float(np.mean(times)), "parameters": variant.parameter_count(),
                      "delta_connections": sum(len(layer.delta_networks) for layer in variant.layers)}
        base = out.get(0, {}).get("avg_time")
        for d, r in out.items():
            r["overhead_vs_no_deltas"] = (r["avg_time"] / base - 1.0) if base else None
        return out

    def benchmark_accuracy(self, model, config, batch):
        """The configured numerics policy's logits against f32 (max abs and relative error); None without one."""
        if config["numerics_policy"] is None:
            return None
        ids = self.generate_test_inputs(batch, config["sequence_length"], config, model.config.vocab_size)
        ref = self.compile_for_benchmark(model, {**config, "numerics_policy": None}, batch)(ids)
        got = self.compile_for_benchmark(model, config, batch)(ids)
        err = np.abs(np.asarray(got, np.float32) - ref)
        return {"max_abs_error": float(err.max()), "max_rel_error": float(err.max() / (np.abs(ref).max() + 1e-30)),
                "top1_agreement": float(np.mean(np.argmax(got, -1) == np.argmax(ref, -1)))}

    def benchmark_kernels(self, model, config, batch):
        """A ts.Profiler run of the benchmark batch: {kernel: calls, seconds, bytes} and the share of time."""
        import tessera as ts
        cm = self.compile_for_benchmark(model, config, batch)
        ids = self.generate_test_inputs(batch, config["sequence_length"], config, model.config.vocab_size)
        cm(ids)
        with ts.Profiler() as prof:
            cm(ids)
        total = prof.kernel_seconds or 1.0
        return {k: {"calls": e["calls"], "seconds": e["seconds"], "bytes": e["bytes"], "share": e["seconds"] / total}
                for k, e in prof.summary().items()}

    def benchmark_scaling(self):
        import tessera as ts
        n = ts.get_device_count()
        if n < 2:
            return {"skipped": f"{n} GPU(s) visible: multi-GPU scaling needs at least 2"}
        return {"skipped": "multi-GPU scaling runs through tessera.dist (benchmarks/dist_bytes.py); not in this suite"}

    # -- the whole run ------------------------------------------------------------------------------------
    def run_full_benchmark(self, model, configurations):
        from .analysis import GDNPerformanceAnalyzer
        results = {}
        for raw in configurations:
            unknown = set(raw) - set(DEFAULTS) - {"name"}
            if unknown:
                raise located(CompilationError, f"benchmark configuration: unknown keys {sorted(unknown)} (known: "
                              f"{sorted(DEFAULTS)})")
            config = {**DEFAULTS, **raw}
            name = raw.get("name") or f"seq{config['sequence_length']}_{config['target']}"
            self.log(f"[{name}]")
            throughput = self.benchmark_throughput(model, config)
            if not throughput:
                raise located(CompilationError, f"benchmark {name}: every batch size exceeds max_tokens")
            batch = config["benchmark_batch_size"] or max(throughput)
            results[name] = {
                "config": {k: (v.to_dict() if hasattr(v, "to_dict") else v) for k, v in config.items()},
                "throughput": throughput,
                "memory": self.benchmark_memory_usage(throughput),
                "fusion": self.benchmark_fusion(model, config, batch),
                "delta_efficiency": self.benchmark_delta_efficiency(model, config, batch),
                "accuracy": self.benchmark_accuracy(model, config, batch),
                "kernels": self.benchmark_kernels(model, config, batch),
                "scaling": self.benchmark_scaling(),
            }
        analyzer = GDNPerformanceAnalyzer()
        analyses = {n: analyzer.analyze_performance_bottlenecks(r) for n, r in results.items()}
        return {"individual_results": results, "analysis": analyses,
                "recommendations": {n: a["recommendations"] for n, a in analyses.items()},
                "machine": _machine()}

    def write_report(self, results, directory):
        """results.json, report.md (tables and the analyzer's findings) and plots (PNG) in `directory`."""
        from .bench_report import write_report
        return write_report(results, directory)


def _machine():
    import platform
    return {"python": platform.python_version(), "processor": platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d")}


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, set):
        return sorted(_jsonable(v) for v in x)
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    return x


def dump_json(results, path):
    with open(path, "w") as f:
        json.dump(_jsonable(results), f, indent=2)
