"""Reductions and softmax against NumPy."""
import numpy as np
import pytest

import tessera as ts
from tessera import tile


@ts.kernel
def reduce_all(x: tile.Tensor["M", "N", ts.f32], out: tile.Tensor["K", "N", ts.f32], s: tile.Tensor["L", ts.f32],
               BM: ts.constexpr = 16, BN: ts.constexpr = 16):
    v = tile.load(x[0:BM, 0:BN], other=0.0)
    big = tile.load(x[0:BM, 0:BN], other=-1e30)
    small = tile.load(x[0:BM, 0:BN], other=1e30)
    tile.store(out[0, 0:BN], tile.sum(v, axis=0))
    tile.store(out[1, 0:BN], tile.max(big, axis=0))
    tile.store(out[2, 0:BN], tile.min(small, 0))
    tile.store(out[3, 0:BM], tile.sum(v, axis=1))
    tile.store(out[4, 0:BM], tile.max(big, axis=-1))
    tile.store(s[0], tile.sum(v))
    tile.store(s[1], tile.max(big))
    tile.store(s[2], tile.min(small))
    tile.store(out[5, 0:BN], tile.sum(v, axis=0, keepdims=True) * 1.0)


def test_reductions(rng):
    x = rng.standard_normal((11, 13)).astype(np.float32)
    out = np.zeros((6, 13), np.float32)
    s = np.zeros(3, np.float32)
    reduce_all[(1,)](x, out, s)
    np.testing.assert_allclose(out[0], x.sum(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[1], x.max(0))
    np.testing.assert_allclose(out[2], x.min(0))
    np.testing.assert_allclose(out[3, :11], x.sum(1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[4, :11], x.max(1))
    np.testing.assert_allclose(s, [x.sum(), x.max(), x.min()], rtol=1e-5)
    np.testing.assert_allclose(out[5], x.sum(0), rtol=1e-5, atol=1e-6)


@ts.kernel
def row_softmax(x: tile.Tensor["R", "C", ts.f32], y: tile.Tensor["R", "C", ts.f32], BLOCK: ts.constexpr = 64):
    r = tile.program_id(0)
    v = tile.load(x[r, 0:BLOCK], other=-float("inf"))
    tile.store(y[r, 0:BLOCK], tile.softmax(v, axis=0))


@pytest.mark.parametrize("cols", [1, 50, 64])
def test_row_softmax(rng, cols):
    x = rng.standard_normal((7, cols)).astype(np.float32) * 5
    y = np.zeros_like(x)
    row_softmax[(7,)](x, y)
    e = np.exp(x - x.max(1, keepdims=True))
    np.testing.assert_allclose(y, e / e.sum(1, keepdims=True), rtol=1e-5, atol=1e-7)


@ts.kernel
def int_reduce(x: tile.Tensor["N", ts.i32], out: tile.Tensor["K", ts.i32], BLOCK: ts.constexpr = 32):
    v = tile.load(x[0:BLOCK])
    tile.store(out[0], tile.sum(v))
    tile.store(out[1], tile.max(tile.load(x[0:BLOCK], other=-1000)))
    tile.store(out[2], tile.sum(tile.cast(v > 0, ts.i32)))


def test_int_reductions(rng):
    x = rng.integers(-20, 20, 25).astype(np.int32)
    out = np.zeros(3, np.int32)
    int_reduce[(1,)](x, out)
    np.testing.assert_array_equal(out, [x.sum(), x.max(), (x > 0).sum()])


@ts.kernel
def axis_reduce(x: tile.Tensor["M", "N", ts.f32], rows: tile.Tensor["M", ts.f32], rmax: tile.Tensor["M", ts.f32],
                cols: tile.Tensor["N", ts.f32], BM: ts.constexpr = 8, BN: ts.constexpr = 1024):
    v = tile.load(x[0:BM, 0:BN], other=0.0)
    tile.store(rows[0:BM], tile.sum(v, axis=1))
    tile.store(rmax[0:BM], tile.max(tile.load(x[0:BM, 0:BN], other=-1e30), axis=-1))
    tile.store(cols[0:BN], tile.sum(v, axis=0))


@pytest.mark.parametrize("m, n", [(8, 1024), (5, 1000), (8, 37)])
def test_axis_reductions_of_wide_tiles(rng, m, n):
    """On the GPU a few outputs over a long axis are reduced by groups of threads (butterfly shuffles);
    here the CPU backend, and in tests/test_emulator.py the PTX of both targets."""
    x = rng.standard_normal((m, n)).astype(np.float32)
    rows, rmax, cols = np.zeros(m, np.float32), np.zeros(m, np.float32), np.zeros(n, np.float32)
    axis_reduce[(1,)](x, rows, rmax, cols)
    np.testing.assert_allclose(rows, x.sum(1), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(rmax, x.max(1))
    np.testing.assert_allclose(cols, x.sum(0), rtol=1e-4, atol=1e-4)
