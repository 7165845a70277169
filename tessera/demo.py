"""`make run`: compile and run the seed gating kernel and a tiled matmul, check them against NumPy,
and print a small table. Runs on the CPU backend (the NVIDIA backend is a later issue: with a GPU
visible the demo says so and still runs on the CPU)."""
from __future__ import annotations

import shutil
import time

import numpy as np


def _gpu_visible() -> bool:
    return shutil.which("nvidia-smi") is not None


def main() -> int:
    import ml_dtypes
    from tessera.gdn import gating_function_kernel, gating_function_reference
    from tessera.kernels import matmul

    bf16 = ml_dtypes.bfloat16

    if _gpu_visible():
        print("note: a GPU is visible, but the NVIDIA backend is not built yet; running on the CPU backend")
    print("tessera demo — CPU backend (MLIR → LLVM JIT)\n")
    rng = np.random.default_rng(0)
    rows = []

    B, S, D, dist = 2, 200, 64, 2
    delta = rng.standard_normal((B, S, D)).astype(bf16)
    w = (rng.standard_normal((D, D)) * 0.1).astype(bf16)
    out = np.zeros_like(delta)
    grid = (B, -(-S // 128))
    t0 = time.perf_counter()
    gating_function_kernel[grid](delta, w, dist, out)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    gating_function_kernel[grid](delta, w, dist, out)
    run = time.perf_counter() - t0
    err = np.abs(out.astype(np.float32) - gating_function_reference(delta, w, dist)).max()
    rows.append(("gating_function_kernel (seed 001)", f"B={B} S={S} D={D}", first, run, err, err < 2e-2))

    M, N, K = 200, 150, 100
    a = rng.standard_normal((M, K)).astype(bf16)
    b = rng.standard_normal((K, N)).astype(bf16)
    c = np.zeros((M, N), np.float32)
    grid = (-(-M // 32), -(-N // 32))
    t0 = time.perf_counter()
    matmul[grid](a, b, c, BM=32, BN=32, BK=32)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    matmul[grid](a, b, c, BM=32, BN=32, BK=32)
    run = time.perf_counter() - t0
    err = np.abs(c - a.astype(np.float32) @ b.astype(np.float32)).max()
    rows.append(("tiled bf16 matmul", f"{M}x{N}x{K}", first, run, err, err < 1e-3))

    print(f"{'kernel':36s} {'shape':18s} {'compile+run':>12s} {'run':>10s} {'max err':>10s}  ok")
    for name, shape, first, run, err, ok in rows:
        print(f"{name:36s} {shape:18s} {first * 1e3:10.1f}ms {run * 1e3:8.2f}ms {err:10.2e}  {'yes' if ok else 'NO'}")
    ok = all(r[-1] for r in rows)
    print("\nall results match NumPy" if ok else "\nMISMATCH against NumPy")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
