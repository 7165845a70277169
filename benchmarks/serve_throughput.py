"""Served throughput of `tessera serve` with adaptive batching against batch-1 serving, in one run.

    python benchmarks/serve_throughput.py --seconds 10 --clients 32

One deployment package (the seed-002 GDN LM built by GDNProductionCompiler for the CPU, variants at batch 1, 2,
4, 8 and 16, SEQ tokens) is served twice on 127.0.0.1: with the default adaptive batching, and with
`--max-batch-size 1` (every request runs alone). The same closed-loop load drives both: CLIENTS concurrent
httpx clients, each sending one-row requests of SEQ random tokens back to back for SECONDS. Reported per mode:
requests/s, p50 / p99 latency seen by the clients, mean rows per batch (from /metrics), failures; and the
throughput ratio adaptive ÷ batch-1.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build(directory, args):
    import tessera as ts
    from tessera.gdn import GDNConfig, GDNProductionCompiler, ProductionGDNModel, init_params
    config = GDNConfig(vocab_size=args.vocab, hidden_size=args.hidden, num_hidden_layers=args.layers,
                       num_attention_heads=args.heads, intermediate_size=2 * args.hidden, max_delta_distance=2,
                       delta_hidden_size=max(8, args.hidden // 4), gating_hidden_size=max(8, args.hidden // 4))
    model = ProductionGDNModel(config).load_gdn_params(init_params(config, seed=0))
    variants = GDNProductionCompiler(target_architectures=["cpu"], export_formats=()).compile_gdn_model(
        model, {"input_ids": ["batch", args.seq], "attention_mask": ["batch", args.seq]},
        batch_sizes=[1, 2, 4, 8, 16])
    package = ts.DeploymentPackage()
    for name, compiled in variants.items():
        package.add_variant(name=name, model=compiled)
    return package.save(directory), config


@contextlib.contextmanager
def server(package, *extra):
    from tessera.serve.process import serve_process
    with serve_process(package, "--log-level", "warning", *extra, cwd=ROOT, startup_timeout=300) as (proc, url):
        yield url
        os.killpg(proc.pid, signal.SIGTERM)   # the drained shutdown, outside the measured load
        proc.wait(timeout=60)


def _metric(text, name):
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + " ") or line.startswith(name + "{"))


def load(url, args, vocab):
    import httpx

    async def run():
        latencies, failures = [], 0
        stop = time.monotonic() + args.seconds

        async def client(k, http):
            nonlocal failures
            rng = np.random.default_rng(k)
            while time.monotonic() < stop:
                body = {"input_ids": rng.integers(0, vocab, (1, args.seq)).tolist()}
                t0 = time.perf_counter()
                try:
                    r = await http.post("/v1/infer", json=body)
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    latencies.append(time.perf_counter() - t0)
                else:
                    failures += 1
        limits = httpx.Limits(max_connections=args.clients + 4)
        async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
            before = (await http.get("/metrics")).text
            t0 = time.perf_counter()
            await asyncio.gather(*(client(k, http) for k in range(args.clients)))
            wall = time.perf_counter() - t0
            after = (await http.get("/metrics")).text
        batches = _metric(after, "tessera_serve_batch_size_count") - _metric(before, "tessera_serve_batch_size_count")
        rows = _metric(after, "tessera_serve_batch_size_sum") - _metric(before, "tessera_serve_batch_size_sum")
        lat = np.asarray(latencies) * 1e3
        return {"requests": len(latencies), "failures": failures, "seconds": wall,
                "requests_per_second": len(latencies) / wall, "p50_ms": float(np.percentile(lat, 50)),
                "p99_ms": float(np.percentile(lat, 99)), "mean_batch": rows / max(batches, 1)}
    return asyncio.run(run())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seq", type=int, default=32)
    ap.add_argument("--vocab", type=int, default=256)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        package, config = build(os.path.join(tmp, "pkg"), args)
        print(f"package built in {time.perf_counter() - t0:.1f} s: {config}")
        results = {}
        for mode, extra in (("adaptive", ()), ("batch-1", ("--max-batch-size", "1"))):
            with server(package, *extra) as url:
                results[mode] = r = load(url, args, config.vocab_size)
            print(f"{mode:9s}: {r['requests_per_second']:7.1f} req/s  p50 {r['p50_ms']:7.1f} ms  p99 {r['p99_ms']:7.1f} ms"
                  f"  mean batch {r['mean_batch']:5.2f}  failures {r['failures']}  ({r['requests']} requests)")
        ratio = results["adaptive"]["requests_per_second"] / results["batch-1"]["requests_per_second"]
        print(f"adaptive / batch-1 throughput: {ratio:.2f}x")
        results["ratio"] = ratio
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
