"""PTX emulator speed: one 128×128×64 GEMM CTA with K=256 (bf16 in, f32 out) on sm_80 (cp.async +
ldmatrix + mma.sync) and sm_90a (TMA + mbarrier + wgmma), with checks on and off, plus the whole
emulator suite's time. The target is ≤ 1 s per GEMM CTA with checks on, on the 2-core CI machine.
Each figure is the median of several runs in this process (compilation excluded).

    python benchmarks/emulator.py [--runs 3] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import ml_dtypes
import numpy as np

import tessera as ts
from tessera.kernels import matmul

bf16 = ml_dtypes.bfloat16


def gemm_cta(target, checks, runs):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((128, 256)).astype(bf16)
    b = rng.standard_normal((256, 128)).astype(bf16)
    c = np.zeros((128, 128), np.float32)
    ck = ts.compile(matmul, a, b, c, target=target, BM=128, BN=128, BK=64)
    times, rep = [], None
    for _ in range(runs):
        c[:] = 0
        t0 = time.perf_counter()
        rep = ck.emulate((1, 1), a, b, c, checks=checks)
        times.append(time.perf_counter() - t0)
    ref = a.astype(np.float32) @ b.astype(np.float32)
    err = float(np.abs(c - ref).max())
    return {"target": target, "checks": checks, "seconds": statistics.median(times), "steps": rep.steps,
            "warp_instructions": rep.warp_instructions, "shared_bank_conflicts": rep.shared_bank_conflicts,
            "global_sectors_per_request": round(rep.sectors_per_request, 2), "max_err": err,
            "wgmma": "wgmma" in ck.asm["ptx"]}


def suite_time():
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
    import emu_cases
    total, n = 0.0, 0
    for name, k, grid, make, ce in emu_cases.cases():
        for target in ("sm_80", "sm_90a"):
            args = make(np.random.default_rng(1))
            ck = ts.compile(k, *args, target=target, **ce)
            rep = ck.emulate(grid, *args, **ce)
            total += rep.seconds
            n += 1
    return {"runs": n, "emulation_seconds": round(total, 2)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args()
    rows = [gemm_cta(t, c, args.runs) for t in ("sm_80", "sm_90a") for c in (True, False)]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, NumPy {np.__version__}")
    print(f"{'GEMM CTA 128x128x64, K=256':30s} {'checks':>6s} {'seconds':>8s} {'steps':>7s} {'warp instr':>10s} "
          f"{'bank confl':>10s} {'sect/req':>8s}")
    for r in rows:
        print(f"{r['target'] + (' (wgmma)' if r['wgmma'] else ' (mma.sync)'):30s} {str(r['checks']):>6s} "
              f"{r['seconds']:8.3f} {r['steps']:7d} {r['warp_instructions']:10d} {r['shared_bank_conflicts']:10d} "
              f"{r['global_sectors_per_request']:8.2f}")
    s = suite_time()
    print(f"emulator suite: {s['runs']} runs, {s['emulation_seconds']} s of emulation (checks on)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"gemm": rows, "suite": s}, f, indent=2)


if __name__ == "__main__":
    main()
