"""Seed 002's `GDNPerformanceAnalyzer`: bottlenecks and recommendations derived from a measured
GDNBenchmarkSuite result, each with the figure it rests on.

Rules (all thresholds are arguments, the defaults are the seed's where it gives one):
- optimal batch: the batch size with the most samples/s; "throughput_still_rising" when the largest batch
  still gains ≥ 10 % over the one before it, "throughput_plateau" when it gains less (cap batching there);
  batch efficiency = samples/s at the largest batch ÷ (that batch × samples/s at batch 1).
- delta overhead: time with the model's max_delta_distance ÷ time without delta connections − 1; above 30 %
  (the seed's) → prune or shorten the connections, with the cheapest measured distance named.
- fusion: unfused ÷ fused time; below 1.05 the graph passes find little to fuse in this model.
- memory efficiency: parameter bytes ÷ (parameters + peak live intermediates) at the largest batch; below 0.6
  (the seed's) → checkpointing / smaller batches, since activations dominate.
- latency tail: p99 ÷ p50 at the benchmark batch above 1.5 → jitter.
- hot kernels: the profile's kernels with ≥ 25 % of kernel time, by name.
- accuracy: a policy whose top-1 agreement with f32 is under 99 % is flagged."""
from __future__ import annotations


class GDNPerformanceAnalyzer:
    def __init__(self, plateau_gain=0.10, delta_overhead_limit=0.30, fusion_gain_floor=1.05,
                 memory_efficiency_floor=0.6, tail_ratio_limit=1.5, hot_kernel_share=0.25, top1_floor=0.99):
        self.plateau_gain = plateau_gain
        self.delta_overhead_limit = delta_overhead_limit
        self.fusion_gain_floor = fusion_gain_floor
        self.memory_efficiency_floor = memory_efficiency_floor
        self.tail_ratio_limit = tail_ratio_limit
        self.hot_kernel_share = hot_kernel_share
        self.top1_floor = top1_floor

    def find_optimal_batch_size(self, throughput):
        return max(throughput, key=lambda b: throughput[b]["samples_per_second"])

    def analyze_performance_bottlenecks(self, results):
        findings, recs = [], []
        tp = {int(b): r for b, r in results["throughput"].items()}
        batches = sorted(tp)
        best = self.find_optimal_batch_size(tp)
        sps = {b: tp[b]["samples_per_second"] for b in batches}
        metrics = {"optimal_batch_size": best, "best_samples_per_second": sps[best]}
        if len(batches) > 1:
            last, prev = batches[-1], batches[-2]
            gain = sps[last] / sps[prev] - 1.0
            metrics["batch_efficiency"] = sps[last] / (last * sps[batches[0]] / batches[0])
            metrics["last_batch_gain"] = gain
            if gain >= self.plateau_gain:
                findings.append({"type": "throughput_still_rising", "value": gain,
                                 "description": f"batch {last} still gives {gain:+.0%} samples/s over batch {prev}"})
                recs.append(f"Throughput is still rising at batch {last} ({gain:+.0%} over {prev}): compile larger "
                            f"batch variants and let the server batch up to them.")
            else:
                plateau = next(b for b in batches if sps[b] >= (1 - self.plateau_gain) * sps[best])
                findings.append({"type": "throughput_plateau", "value": gain,
                                 "description": f"beyond batch {plateau} samples/s grow by under "
                                                f"{self.plateau_gain:.0%} ({sps[plateau]:.1f} → {sps[best]:.1f})"})
                recs.append(f"Cap the serving batch near {plateau}: larger batches add latency for "
                            f"{sps[best] / sps[plateau] - 1:+.0%} throughput.")
        delta = {int(d): r for d, r in (results.get("delta_efficiency") or {}).items()}
        if delta and 0 in delta and len(delta) > 1:
            top = max(delta)
            overhead = delta[top]["overhead_vs_no_deltas"]
            metrics["delta_overhead"] = overhead
            if overhead is not None and overhead > self.delta_overhead_limit:
                cheapest = min((d for d in delta if d > 0), key=lambda d: delta[d]["overhead_vs_no_deltas"])
                findings.append({"type": "high_delta_overhead", "value": overhead,
                                 "description": f"delta connections (distance {top}) add {overhead:.0%} time"})
                other = (f"; distance {cheapest} costs {delta[cheapest]['overhead_vs_no_deltas']:.0%}"
                         if cheapest != top else "")
                recs.append(f"Delta connections at distance {top} cost {overhead:.0%} of the no-delta time{other}: "
                            "prune (ts.optimizations.PruneSparseDeltas) or lower max_delta_distance.")
        fusion = results.get("fusion")
        if fusion:
            metrics["fusion_speedup"] = fusion["speedup"]
            if fusion["speedup"] < self.fusion_gain_floor:
                findings.append({"type": "little_fusion_gain", "value": fusion["speedup"],
                                 "description": f"the graph passes gain {fusion['speedup']:.2f}x "
                                                f"({fusion['unfused']['kernels']} → {fusion['fused']['kernels']} kernels)"})
                recs.append(f"Graph fusion gains only {fusion['speedup']:.2f}x here ({fusion['unfused']['kernels']} → "
                            f"{fusion['fused']['kernels']} kernels): time goes to the unfused ops (see hot kernels).")
            else:
                recs.append(f"Keep the default graph pipeline: it is {fusion['speedup']:.2f}x faster than none "
                            f"({fusion['unfused']['kernels']} → {fusion['fused']['kernels']} kernels).")
        mem = tp[batches[-1]]["memory"]
        efficiency = mem["parameters"] / max(1, mem["parameters"] + mem["peak_intermediates"])
        metrics["memory_efficiency"] = efficiency
        if efficiency < self.memory_efficiency_floor:
            findings.append({"type": "activation_memory", "value": efficiency,
                             "description": f"at batch {batches[-1]} live intermediates peak at "
                                            f"{mem['peak_intermediates'] / 2**20:.1f} MiB vs "
                                            f"{mem['parameters'] / 2**20:.1f} MiB of parameters"})
            recs.append(f"Activations dominate memory at batch {batches[-1]} (parameters are {efficiency:.0%} of the "
                        "peak): use ts.checkpoint for training or smaller serving batches.")
        bench_batch = batches[-1]
        lat = tp[bench_batch]["latency"]
        tail = lat["p99_ms"] / max(lat["p50_ms"], 1e-9)
        metrics["latency_tail_ratio"] = tail
        if tail > self.tail_ratio_limit:
            findings.append({"type": "latency_jitter", "value": tail,
                             "description": f"p99 {lat['p99_ms']:.2f} ms is {tail:.1f}x p50 at batch {bench_batch}"})
            recs.append(f"Latency tail: p99 is {tail:.1f}x p50 at batch {bench_batch}; pin threads / isolate cores.")
        for name, k in (results.get("kernels") or {}).items():
            if k["share"] >= self.hot_kernel_share:
                findings.append({"type": "hot_kernel", "value": k["share"],
                                 "description": f"{name}: {k['share']:.0%} of kernel time in {k['calls']} launches"})
                recs.append(f"{name} takes {k['share']:.0%} of kernel time ({k['calls']} launches): it is where tuning "
                            "pays (block sizes via @ts.kernel.autotune, or fewer launches).")
        acc = results.get("accuracy")
        if acc is not None:
            metrics["top1_agreement"] = acc["top1_agreement"]
            if acc["top1_agreement"] < self.top1_floor:
                findings.append({"type": "policy_accuracy", "value": acc["top1_agreement"],
                                 "description": f"the numerics policy agrees with f32 on {acc['top1_agreement']:.1%} "
                                                f"of next tokens (max abs error {acc['max_abs_error']:.3g})"})
                recs.append(f"The numerics policy changes {1 - acc['top1_agreement']:.1%} of next-token choices: keep "
                            "gating and deltas in bf16 / f32, or calibrate.")
        return {"metrics": metrics, "bottlenecks": findings, "recommendations": recs}

    def generate_optimization_plan(self, analysis):
        """The findings as actions: a fixed priority per kind (delta overhead, hot kernels, batching, memory,
        latency, fusion, plateau, accuracy), then by the size of the measured value within a kind."""
        order = {"high_delta_overhead": 0, "hot_kernel": 1, "throughput_still_rising": 2, "activation_memory": 3,
                 "latency_jitter": 4, "little_fusion_gain": 5, "throughput_plateau": 6, "policy_accuracy": 7}
        actions = sorted(analysis["bottlenecks"], key=lambda f: (order.get(f["type"], 9), -abs(f["value"] or 0)))
        return {"actions": [f["description"] for f in actions], "recommendations": analysis["recommendations"]}
