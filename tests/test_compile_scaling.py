"""Compile time linear in kernel length (issue 16), checked by the shape of the generated code rather than
by timings: what made it quadratic was one CPU loop nest per elementwise op (the JIT's LLVM verifies the
whole function after vectorising each loop). benchmarks/compile_time.py has the times."""
import numpy as np

import tessera as ts
from tessera import tile


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
