"""The CPU backend against NumPy, in one run (issue 17's targets): memory-bound kernels, row softmax, f32 GEMM
against NumPy's BLAS, the demo's fused GDN aggregation against NumPy f32 and the unfused tessera graph, and a
training step of the small LM (benchmarks/training_step.py) against its NumPy twin.

    python benchmarks/cpu_vs_numpy.py [--repeat 7] [--json out.json] [--skip-training]

Each figure is the median of --repeat timed calls after two warm-up calls (the first compiles). The BLAS
environment (OPENBLAS_NUM_THREADS, OMP_NUM_THREADS, MKL_NUM_THREADS, OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE)
and tessera's TESSERA_CPU_THREADS are printed with the results, since they set NumPy's and tessera's thread
counts. Ratios are tessera ÷ NumPy speed (> 1: tessera faster).
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
import time

import numpy as np

import tessera as ts
from tessera import tile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV_KEYS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
            "TESSERA_CPU_THREADS")


def median_time(fn, repeat):
    fn()
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def kernels():
    """Defined here with tessera imported at module level: a kernel's annotations are read in its globals."""
    @ts.kernel
    def axpy(x: tile.Tensor["N", ts.f32], y: tile.Tensor["N", ts.f32], out: tile.Tensor["N", ts.f32], a: float,
             BLOCK: ts.constexpr = 4096):
        off = tile.program_id(0) * BLOCK
        tile.store(out[off:off + BLOCK], tile.load(x[off:off + BLOCK]) * a + tile.load(y[off:off + BLOCK]))

    @ts.kernel
    def scale_bf16(x: tile.Tensor["N", ts.bf16], out: tile.Tensor["N", ts.bf16], a: float,
                   BLOCK: ts.constexpr = 4096):
        off = tile.program_id(0) * BLOCK
        tile.store(out[off:off + BLOCK], tile.load(x[off:off + BLOCK]) * a)

    @ts.function
    def softmax_rows(x):
        return ts.ops.softmax(x)

    @ts.function
    def matmul(a, b):
        return ts.gemm(a, b)
    return axpy, scale_bf16, softmax_rows, matmul


def run(repeat):
    import ml_dtypes
    from tessera import gdn
    from tessera.demo import _aggregation_inputs
    axpy, scale_bf16, softmax_rows, matmul = kernels()
    rng = np.random.default_rng(0)
    rows = []

    def row(name, t_ts, t_np, unit=None, amount=None, extra=None):
        r = {"case": name, "tessera_ms": t_ts * 1e3, "numpy_ms": t_np * 1e3, "ratio": t_np / t_ts}
        if unit:
            r["tessera_" + unit] = amount / t_ts / 1e9
            r["numpy_" + unit] = amount / t_np / 1e9
        r.update(extra or {})
        rows.append(r)
        print(f"{name:34s} tessera {t_ts * 1e3:9.3f} ms   numpy {t_np * 1e3:9.3f} ms   ratio {r['ratio']:6.3f}"
              + (f"   ({r['tessera_' + unit]:.2f} vs {r['numpy_' + unit]:.2f} {unit})" if unit else ""), flush=True)

    n = 1 << 23
    x, y, out = (rng.standard_normal(n).astype(np.float32) for _ in range(3))
    grid = (n // 4096,)
    row("axpy f32 (8M)", median_time(lambda: axpy[grid](x, y, out, 2.0), repeat),
        median_time(lambda: np.add(np.multiply(x, 2.0, out=out), y, out=out), repeat), "GB/s", 12 * n)
    xb = rng.standard_normal(n).astype(ml_dtypes.bfloat16)
    ob = np.empty_like(xb)
    row("scale bf16 (8M)", median_time(lambda: scale_bf16[grid](xb, ob, 2.0), repeat),
        median_time(lambda: np.multiply(xb, ml_dtypes.bfloat16(2.0), out=ob), repeat), "GB/s", 4 * n)
    s = rng.standard_normal((4096, 1024)).astype(np.float32)

    def np_softmax():
        e = np.exp(s - s.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    row("row softmax f32 4096x1024", median_time(lambda: softmax_rows(s), repeat), median_time(np_softmax, repeat),
        "GB/s", 8 * s.size)
    for m in (512, 1024):
        a, b = rng.standard_normal((m, m)).astype(np.float32), rng.standard_normal((m, m)).astype(np.float32)
        r = max(2, repeat // 3) if m == 1024 else repeat
        row(f"GEMM f32 {m}^3", median_time(lambda: matmul(a, b), r), median_time(lambda: a @ b, r), "GFLOP/s",
            2 * m ** 3)
    L, B, S, D = 4, 2, 512, 64
    srcs, tgt, ws, A = _aggregation_inputs(np.random.default_rng(1), L, B, S, D)
    fn = gdn.multi_scale_delta_aggregation
    args = [srcs, tgt, ws, A]
    fused = ts.compile(fn, *args, params={"attention_weights": A})
    unfused = ts.compile(fn, *args, params={"attention_weights": A},
                         pipeline="canonicalize,tessera-prune-sparse-deltas{threshold=0.01},canonicalize,cse")
    f32 = ([s_.astype(np.float32) for s_ in srcs], tgt.astype(np.float32), [w.astype(np.float32) for w in ws],
           A.astype(np.float32))
    t_fused = median_time(lambda: fused(srcs, tgt, ws), repeat)
    t_unfused = median_time(lambda: unfused(srcs, tgt, ws), repeat)
    t_np = median_time(lambda: gdn.reference.multi_scale_delta_aggregation(*f32, threshold=0.01), repeat)
    row("GDN fused aggregation (bf16)", t_fused, t_np,
        extra={"unfused_ms": t_unfused * 1e3, "fused_vs_unfused": t_unfused / t_fused,
               "kernels_fused": fused.metadata["kernels"], "kernels_unfused": unfused.metadata["kernels"]})
    print(f"{'':34s} unfused tessera graph {t_unfused * 1e3:.3f} ms: fused is {t_unfused / t_fused:.2f}x faster")
    return rows


def training(steps):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "t.json")
        r = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "training_step.py"), "--steps",
                            str(steps), "--json", out], capture_output=True, text=True, cwd=ROOT, timeout=1800)
        if r.returncode != 0:
            return {"error": r.stderr[-2000:]}
        print(r.stdout.strip())
        return json.load(open(out))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--skip-training", action="store_true")
    ap.add_argument("--training-steps", type=int, default=5)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    env = {k: os.environ.get(k, "(unset)") for k in ENV_KEYS}
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}; {env}")
    results = {"environment": env, "cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d"), "cases": run(args.repeat)}
    if not args.skip_training:
        results["training_step"] = training(args.training_steps)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
