"""Compile time of a small kernel on the CPU backend: cold (empty cache), from the disk cache
(a new process, populated cache) and from the in-memory cache. Each figure is measured in a fresh
subprocess (except the in-memory one) and is the median of several runs.

    python benchmarks/compile_cache.py [--runs 5] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap

CHILD = textwrap.dedent('''
    import json, sys, time
    t0 = time.perf_counter()
    import numpy as np, tessera as ts
    from tessera import tile
    t_import = time.perf_counter() - t0

    @ts.kernel
    def scale_rows(x: tile.Tensor["M", "N", ts.f32], out: tile.Tensor["M", "N", ts.f32],
                   alpha: float, BLOCK_N: ts.constexpr = 128):
        row = tile.program_id(0)
        for n0 in tile.range(0, out.shape[1], BLOCK_N):
            v = tile.load(x[row, n0:n0 + BLOCK_N])
            tile.store(out[row, n0:n0 + BLOCK_N], v * alpha)

    x = np.ones((4, 300), np.float32)
    out = np.zeros_like(x)
    t0 = time.perf_counter()
    ck = ts.compile(scale_rows, x, out, 2.0)
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    ts.compile(scale_rows, x, out, 2.0)
    t_mem = time.perf_counter() - t0
    print(json.dumps({"import": t_import, "first": t_first, "memory": t_mem,
                      "disk": bool(ck.metadata.get("from_disk_cache")),
                      "stages": ck.metadata.get("compile_seconds", {})}))
''')


def child(cache_dir):
    script = os.path.join(cache_dir, "bench_kernel.py")  # kernels need a source file
    with open(script, "w") as f:
        f.write(CHILD)
    env = dict(os.environ, TESSERA_CACHE_DIR=os.path.join(cache_dir, "cache"))
    r = subprocess.run([sys.executable, script], capture_output=True, text=True, env=env)
    if r.returncode:
        raise SystemExit(r.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json")
    args = ap.parse_args()
    cold, disk, mem, imp, stages = [], [], [], [], []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as d:
            c = child(d)
            assert not c["disk"]
            w = child(d)
            assert w["disk"]
        cold.append(c["first"])
        disk.append(w["first"])
        mem.append(c["memory"])
        imp.append(c["import"])
        stages.append(c["stages"])
    med = statistics.median
    res = {"machine": f"{platform.node()} ({os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()})",
           "kernel": "scale_rows (1 runtime loop, load/store, f32)", "runs": args.runs,
           "cold_ms": med(cold) * 1e3, "disk_cache_ms": med(disk) * 1e3, "memory_cache_ms": med(mem) * 1e3,
           "import_tessera_ms": med(imp) * 1e3,
           "cold_stage_ms": {k: med([s[k] for s in stages]) * 1e3 for k in stages[0]}}
    print(f"machine: {res['machine']}")
    print(f"kernel:  {res['kernel']}, median of {args.runs} fresh processes")
    print(f"{'cold compile (empty cache)':32s} {res['cold_ms']:8.1f} ms")
    for k, v in res["cold_stage_ms"].items():
        print(f"{'  stage ' + k:32s} {v:8.1f} ms")
    print(f"{'from the disk cache (new process)':32s} {res['disk_cache_ms']:8.1f} ms")
    print(f"{'from the in-memory cache':32s} {res['memory_cache_ms']:8.3f} ms")
    print(f"{'import tessera':32s} {res['import_tessera_ms']:8.1f} ms")
    print(f"cold / disk-cache ratio: {res['cold_ms'] / res['disk_cache_ms']:.1f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
