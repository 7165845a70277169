"""Compile time linear in kernel length (issue 16), checked by the shape of the generated code rather than
by timings: what made it quadratic was one CPU loop nest per elementwise op (the JIT's LLVM verifies the
whole function after vectorising each loop) and, on NVIDIA, a branch per lane of large thread-cyclic
fragments (instruction selection and ptxas cost lanes × blocks). benchmarks/compile_time.py has the times."""
import re

import ml_dtypes
import numpy as np
import pytest

import tessera as ts
from tessera import tile
from test_nvidia_compile import _have_ptxas

bf16 = ml_dtypes.bfloat16
needs_ptxas = pytest.mark.skipif(not _have_ptxas(), reason="ptxas not found (the NVIDIA stages need it)")


@ts.kernel
def chain(x: tile.Tensor["M", "N", ts.f32], y: tile.Tensor["M", "N", ts.f32], out: tile.Tensor["S", "M", "N", ts.f32],
          STEPS: ts.constexpr = 4, BM: ts.constexpr = 8, BN: ts.constexpr = 16):
    r0 = tile.program_id(0) * BM
    a = tile.load(x[r0:r0 + BM, 0:BN])
    b = tile.load(y[r0:r0 + BM, 0:BN])
    v = a
    w = b
    for _ in tile.static_range(STEPS):    # values with several uses, as in real kernels
        u = v * a + w
        w = tile.maximum(v, w) - b * 0.5
        v = tile.where(u > w, u, v) / (tile.abs(w) + 1.0)
    tile.store(out[0, r0:r0 + BM, 0:BN], v)
    tile.store(out[1, r0:r0 + BM, 0:BN], w)


def _chain_reference(x, y, steps):
    v, w = x.copy(), y.copy()
    for _ in range(steps):
        u = v * x + w
        w = np.maximum(v, w) - y * np.float32(0.5)
        v = np.where(u > w, u, v) / (np.abs(w) + np.float32(1.0))
    return v, w


def _loop_nests(llvm_text):
    return llvm_text.count("llvm.cond_br"), llvm_text.count("@malloc(")


def test_cpu_loop_nests_do_not_grow_with_elementwise_statements(rng):
    x = rng.standard_normal((20, 16)).astype(np.float32)
    y = rng.standard_normal((20, 16)).astype(np.float32)
    shapes = {}
    for steps in (2, 24):
        out = np.zeros((2, 20, 16), np.float32)
        ck = ts.compile(chain, x, y, out, STEPS=steps)
        shapes[steps] = _loop_nests(ck.asm["llvm"])
        chain[(3,)](x, y, out, STEPS=steps)
        v, w = _chain_reference(x, y, steps)
        np.testing.assert_allclose(out[0], v, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(out[1], w, rtol=1e-5, atol=1e-6)
    # 72 elementwise statements compile to the loops of 6: one group of them, not a loop nest each
    assert shapes[24] == shapes[2], shapes


@ts.kernel
def big_1d(x: tile.Tensor["N", ts.f32], y: tile.Tensor["N", ts.f32], out: tile.Tensor["N", ts.f32],
           BLOCK: ts.constexpr = 8192):
    s = tile.program_id(0) * BLOCK
    a = tile.load(x[s:s + BLOCK])
    b = tile.load(y[s:s + BLOCK], other=2.0)
    tile.store(out[s:s + BLOCK], (tile.maximum(a * b + 1.0, a) - b) * 0.5)


@ts.kernel
def big_2d_bf16(x: tile.Tensor["M", "N", ts.bf16], out: tile.Tensor["M", "N", ts.f32], rows: tile.Tensor["M", ts.f32],
                BM: ts.constexpr = 64, BN: ts.constexpr = 128):
    r0 = tile.program_id(0) * BM
    a = tile.cast(tile.load(x[r0:r0 + BM, 0:BN]), ts.f32)
    tile.store(out[r0:r0 + BM, 0:BN], a * 2.0 - 1.0)
    tile.store(rows[r0:r0 + BM], tile.sum(a, axis=1))


@needs_ptxas
@pytest.mark.parametrize("target", ["sm_80", "sm_90a"])
def test_large_fragments_go_lane_by_lane_without_branches(rng, target):
    """8,192 elements on 128 threads: 64 slots a thread, past the blocked layout (thread-cyclic), with
    ragged bounds. Masked f32 lanes are predicated accesses: no branch in the kernel at all."""
    n = 8192 + 100
    x, y = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    out = np.full(n + 5, 7.0, np.float32)
    ck = ts.compile(big_1d, x, y, out[:n], target=target)
    assert not re.search(r"\bbra\b", ck.asm["ptx"])
    assert ck.asm["ptx"].count("ld.global.b32") == 2 * 64
    ck.emulate((2,), x, y, out[:n])
    np.testing.assert_allclose(out[:n], (np.maximum(x * y + 1.0, x) - y) * 0.5, rtol=1e-6, atol=1e-6)
    assert (out[n:] == 7.0).all()


@needs_ptxas
@pytest.mark.parametrize("target", ["sm_80", "sm_90a"])
@pytest.mark.parametrize("bm,bn", [(64, 128), (50, 100)])
def test_large_bf16_fragments_and_shared_round_trips_in_emulator(rng, target, bm, bn):
    """16-bit lanes are predicated accesses too; the row sum and the store go through shared memory, lane
    by lane where the tile does not fill the fragments (50 × 100 elements in 128 × 40 slots)."""
    m, n = 100, 120
    x = rng.standard_normal((m, n)).astype(bf16)
    out, rows = np.zeros((m, n), np.float32), np.zeros(m, np.float32)
    ck = ts.compile(big_2d_bf16, x, out, rows, target=target, BM=bm, BN=bn)
    assert len(re.findall(r"@%p\d+ ld\.global\.b16", ck.asm["ptx"])) == -(-bm * bn // 128)   # one per slot
    if bm * bn % 128:
        assert re.search(r"@%p\d+ st\.shared", ck.asm["ptx"])
    ck.emulate((-(-m // bm),), x, out, rows, BM=bm, BN=bn)
    xf = x.astype(np.float32)[:, :bn]
    np.testing.assert_allclose(out[:, :bn], xf * 2 - 1, rtol=1e-6)
    np.testing.assert_allclose(rows, xf.sum(1), rtol=1e-4, atol=1e-4)
