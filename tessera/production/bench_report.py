"""Writing a GDNBenchmarkSuite result: results.json, report.md and matplotlib plots (Agg, no display)."""
from __future__ import annotations

import os

from .bench import dump_json


def markdown(results) -> str:
    m = results.get("machine", {})
    lines = [f"# tessera bench — {m.get('date', '')}, {m.get('processor', '')}, {m.get('cores', '?')} cores", ""]
    for name, r in results["individual_results"].items():
        lines += [f"## {name}", "", "| batch | samples/s | tokens/s | p50 ms | p90 ms | p99 ms | peak intermediates MiB |"
                  " kernels |", "|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for b, t in sorted(r["throughput"].items(), key=lambda kv: int(kv[0])):
            lat, mem = t["latency"], t["memory"]
            lines.append(f"| {b} | {t['samples_per_second']:.1f} | {t['tokens_per_second']:.0f} | {lat['p50_ms']:.2f} | "
                         f"{lat['p90_ms']:.2f} | {lat['p99_ms']:.2f} | {mem['peak_intermediates'] / 2**20:.2f} | "
                         f"{mem['kernels']} |")
        f = r["fusion"]
        lines += ["", f"Fused vs unfused: {f['fused']['avg_time'] * 1e3:.2f} ms ({f['fused']['kernels']} kernels) vs "
                      f"{f['unfused']['avg_time'] * 1e3:.2f} ms ({f['unfused']['kernels']} kernels): "
                      f"{f['speedup']:.2f}x", "", "| max_delta_distance | ms | overhead vs none | delta connections |",
                  "|---:|---:|---:|---:|"]
        for d, e in sorted(r["delta_efficiency"].items(), key=lambda kv: int(kv[0])):
            ov = e["overhead_vs_no_deltas"]
            lines.append(f"| {d} | {e['avg_time'] * 1e3:.2f} | {'' if ov is None else f'{ov:+.0%}'} | "
                         f"{e['delta_connections']} |")
        if r.get("accuracy"):
            a = r["accuracy"]
            lines += ["", f"Numerics policy vs f32: max abs error {a['max_abs_error']:.3g}, top-1 agreement "
                          f"{a['top1_agreement']:.1%}"]
        lines += ["", "| kernel | calls | share of kernel time |", "|---|---:|---:|"]
        for k, e in list(r["kernels"].items())[:8]:
            lines.append(f"| {k} | {e['calls']} | {e['share']:.0%} |")
        lines += ["", f"Scaling: {r['scaling'].get('skipped', r['scaling'])}", "", "### Analysis", ""]
        lines += [f"- {x}" for x in results["recommendations"][name]]
        lines.append("")
    return "\n".join(lines)


def plots(results, directory):
    """PNG files written (throughput and latency vs batch, fused vs unfused, delta distance)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.ticker  # noqa: F401 - matplotlib.ticker.NullLocator
    import matplotlib.pyplot as plt
    written = []
    for name, r in results["individual_results"].items():
        batches = sorted(int(b) for b in r["throughput"])
        tp = {int(b): v for b, v in r["throughput"].items()}
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
        a1.plot(batches, [tp[b]["samples_per_second"] for b in batches], "o-")
        a1.set(xlabel="batch size", ylabel="samples / s", title=f"{name}: throughput", xscale="log", xticks=batches)
        a1.set_xticklabels([str(b) for b in batches])
        for p in ("p50_ms", "p90_ms", "p99_ms"):
            a2.plot(batches, [tp[b]["latency"][p] for b in batches], "o-", label=p[:3])
        a2.set(xlabel="batch size", ylabel="latency (ms)", title="latency percentiles", xscale="log", xticks=batches)
        a2.set_xticklabels([str(b) for b in batches])
        a2.legend()
        for ax in (a1, a2):   # log-scaled batch axis: only the measured batch sizes as ticks
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        fig.tight_layout()
        path = os.path.join(directory, f"{name}_throughput_latency.png")
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
        fig, (b1, b2) = plt.subplots(1, 2, figsize=(10, 4))
        f = r["fusion"]
        b1.bar(["unfused", "fused"], [f["unfused"]["avg_time"] * 1e3, f["fused"]["avg_time"] * 1e3])
        b1.set(ylabel="ms per call", title=f"graph fusion: {f['speedup']:.2f}x")
        d = sorted(int(k) for k in r["delta_efficiency"])
        b2.bar([str(x) for x in d], [r["delta_efficiency"][k if k in r["delta_efficiency"] else str(k)]["avg_time"] * 1e3
                                     for k in d])
        b2.set(xlabel="max_delta_distance", ylabel="ms per call", title="delta connections")
        fig.tight_layout()
        path = os.path.join(directory, f"{name}_fusion_deltas.png")
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


def write_report(results, directory):
    os.makedirs(directory, exist_ok=True)
    dump_json(results, os.path.join(directory, "results.json"))
    with open(os.path.join(directory, "report.md"), "w") as f:
        f.write(markdown(results))
    return [os.path.join(directory, "results.json"), os.path.join(directory, "report.md")] + plots(results, directory)
