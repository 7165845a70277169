"""Reference kernels shipped with tessera: the AOT suites and benchmarks are built from them."""
from __future__ import annotations

import tessera as ts
from tessera import tile


@ts.kernel
def vector_add(x: tile.Tensor["N", ts.f32], y: tile.Tensor["N", ts.f32], out: tile.Tensor["N", ts.f32],
               BLOCK: ts.constexpr = 1024):
    start = tile.program_id(0) * BLOCK
    tile.store(out[start:start + BLOCK], tile.load(x[start:start + BLOCK]) + tile.load(y[start:start + BLOCK]))


@ts.kernel
def scale(x: tile.Tensor["N", ts.bf16], out: tile.Tensor["N", ts.bf16], alpha: float, BLOCK: ts.constexpr = 2048):
    start = tile.program_id(0) * BLOCK
    tile.store(out[start:start + BLOCK], tile.load(x[start:start + BLOCK]) * alpha)


@ts.kernel
def row_softmax(x: tile.Tensor["R", "C", ts.f32], y: tile.Tensor["R", "C", ts.f32], BLOCK: ts.constexpr = 1024):
    r = tile.program_id(0)
    v = tile.load(x[r, 0:BLOCK], other=-float("inf"))
    tile.store(y[r, 0:BLOCK], tile.softmax(v, axis=0))


@ts.kernel
def matmul(a: tile.Tensor["M", "K"], b: tile.Tensor["K", "N"], c: tile.Tensor["M", "N", ts.f32],
           BM: ts.constexpr = 64, BN: ts.constexpr = 64, BK: ts.constexpr = 32):
    """c = a @ b with f32 accumulation; a and b of one type (bf16 and f16 take the tensor cores)."""
    pm, pn = tile.program_id(0), tile.program_id(1)
    acc = tile.zeros([BM, BN], ts.f32)
    for k0 in tile.range(0, a.shape[1], BK):
        acc = tile.mma(tile.load(a[pm * BM:pm * BM + BM, k0:k0 + BK]),
                       tile.load(b[k0:k0 + BK, pn * BN:pn * BN + BN]), acc)
    tile.store(c[pm * BM:pm * BM + BM, pn * BN:pn * BN + BN], acc)
