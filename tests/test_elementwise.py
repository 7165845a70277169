"""Elementwise ops, operators, broadcasting, casts and scalar parameters on the CPU backend."""
import ml_dtypes
import numpy as np
import pytest

import tessera as ts
from tessera import tile

bf16 = ml_dtypes.bfloat16


@ts.kernel
def vector_add(x: tile.Tensor["N", ts.f32], y: tile.Tensor["N", ts.f32], out: tile.Tensor["N", ts.f32],
               BLOCK: ts.constexpr = 64):
    pid = tile.program_id(0)
    start = pid * BLOCK
    a = tile.load(x[start:start + BLOCK])
    b = tile.load(y[start:start + BLOCK])
    tile.store(out[start:start + BLOCK], a + b)


@pytest.mark.parametrize("n", [1, 63, 64, 65, 1000])
def test_vector_add_ragged(rng, n):
    x, y = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    out = np.full(n + 3, 7.0, np.float32)
    vector_add[(-(-n // 64),)](x, y, out[:n])
    np.testing.assert_allclose(out[:n], x + y, rtol=1e-6)
    assert (out[n:] == 7.0).all(), "out-of-bounds lanes must not be written"


@ts.kernel
def operators(x: tile.Tensor["N", ts.f32], y: tile.Tensor["N", ts.f32], out: tile.Tensor["K", "N", ts.f32],
              BLOCK: ts.constexpr = 32):
    a = tile.load(x[0:BLOCK], other=1.0)
    b = tile.load(y[0:BLOCK], other=1.0)
    tile.store(out[0, 0:BLOCK], a + b)
    tile.store(out[1, 0:BLOCK], a - b)
    tile.store(out[2, 0:BLOCK], a * b)
    tile.store(out[3, 0:BLOCK], a / b)
    tile.store(out[4, 0:BLOCK], -a)
    tile.store(out[5, 0:BLOCK], a ** 2)
    tile.store(out[6, 0:BLOCK], tile.where(a > b, a, b))
    tile.store(out[7, 0:BLOCK], tile.maximum(a, 0.5) + tile.minimum(b, -0.5))
    tile.store(out[8, 0:BLOCK], tile.exp(a) + tile.tanh(b))
    tile.store(out[9, 0:BLOCK], tile.sqrt(tile.abs(a)) + tile.log(tile.abs(b) + 1.0))
    tile.store(out[10, 0:BLOCK], tile.sigmoid(a) + ts.ops.sigmoid_safe(b * 100.0))
    tile.store(out[11, 0:BLOCK], tile.cast((a > 0.0) & (b < 0.0), ts.f32))
    tile.store(out[12, 0:BLOCK], 2.0 * a + 1 - b / 4)
    tile.store(out[13, 0:BLOCK], tile.cast(tile.cast(a * 10.0, ts.i32), ts.f32))
    tile.store(out[14, 0:BLOCK], ts.ops.silu(a) + ts.ops.relu(b))


def test_operators(rng):
    n = 32
    x = rng.standard_normal(n).astype(np.float32)
    y = rng.standard_normal(n).astype(np.float32)
    out = np.zeros((15, n), np.float32)
    operators[(1,)](x, y, out)
    sig = lambda v: 0.5 * (1 + np.tanh(0.5 * v))  # noqa: E731 - overflow-free logistic
    ref = [x + y, x - y, x * y, x / y, -x, x ** 2, np.where(x > y, x, y),
           np.maximum(x, 0.5) + np.minimum(y, -0.5), np.exp(x) + np.tanh(y),
           np.sqrt(np.abs(x)) + np.log(np.abs(y) + 1), sig(x) + sig(y * 100.0),
           ((x > 0) & (y < 0)).astype(np.float32), 2 * x + 1 - y / 4, np.trunc(x * 10), x * sig(x) + np.maximum(y, 0)]
    for i, r in enumerate(ref):
        np.testing.assert_allclose(out[i], r, rtol=2e-5, atol=2e-6, err_msg=f"row {i}")


@ts.kernel
def outer(col: tile.Tensor["M", ts.f32], row: tile.Tensor["N", ts.f32], out: tile.Tensor["M", "N", ts.f32],
          BM: ts.constexpr = 8, BN: ts.constexpr = 16):
    c = tile.load(col[0:BM])                 # [BM]
    r = tile.load(row[0:BN])                 # [BN]
    grid2 = tile.zeros([BM, BN], ts.f32) + r  # broadcast a row
    cc = tile.full([BN, BM], 1.0) * c        # broadcast along rows: [BN, BM]
    tile.store(out[0:BM, 0:BN], grid2 + tile.sum(cc, axis=0, keepdims=False)[0:1] * 0.0 + tile.max(cc, axis=0, keepdims=True)[0:1] * 0.0)


def test_broadcast_rows(rng):
    col = rng.standard_normal(8).astype(np.float32)
    row = rng.standard_normal(16).astype(np.float32)
    out = np.zeros((8, 16), np.float32)
    with pytest.raises(ts.CompilationError):
        outer[(1,)](col, row, out)   # indexing a tile is not supported: a clear error


@ts.kernel
def bcast(col: tile.Tensor["M", ts.f32], row: tile.Tensor["N", ts.f32], out: tile.Tensor["M", "N", ts.f32],
          BM: ts.constexpr = 8, BN: ts.constexpr = 16):
    r = tile.load(row[0:BN])                               # [BN]
    c = tile.load(col[0:BM])                               # [BM]
    rows = tile.zeros([BM, BN], ts.f32) + r                # row vector broadcast over rows
    cols = tile.sum(tile.zeros([BM, BN], ts.f32), axis=1, keepdims=True) + tile.full([BM, 1], 1.0) * \
        tile.sum(tile.zeros([BM, 1], ts.f32), axis=1, keepdims=True)
    colb = tile.zeros([BN, BM], ts.f32) + c                # [BN, BM]
    tile.store(out[0:BM, 0:BN], rows + cols + colb.T)


def test_broadcasting(rng):
    col = rng.standard_normal(8).astype(np.float32)
    row = rng.standard_normal(16).astype(np.float32)
    out = np.zeros((8, 16), np.float32)
    bcast[(1,)](col, row, out)
    np.testing.assert_allclose(out, row[None, :] + col[:, None], rtol=1e-6)


@ts.kernel
def casts(x: tile.Tensor["N", ts.bf16], h: tile.Tensor["N", ts.f16], i: tile.Tensor["N", ts.i32],
          o_bf: tile.Tensor["N", ts.bf16], o_f: tile.Tensor["N", ts.f32], o_i: tile.Tensor["N", ts.i64],
          BLOCK: ts.constexpr = 16):
    a = tile.load(x[0:BLOCK])
    b = tile.load(h[0:BLOCK])
    c = tile.load(i[0:BLOCK])
    tile.store(o_bf[0:BLOCK], a * 2.0)            # bf16 math, stored as bf16
    tile.store(o_f[0:BLOCK], a + b + c)           # bf16 + f16 → f32, + i32 → f32
    tile.store(o_i[0:BLOCK], tile.cast(c, ts.i64) * 3 + 1)


def test_casts_bf16_f16_int(rng):
    n = 13
    x = rng.standard_normal(n).astype(bf16)
    h = rng.standard_normal(n).astype(np.float16)
    i = rng.integers(-50, 50, n).astype(np.int32)
    o_bf, o_f, o_i = np.zeros(n, bf16), np.zeros(n, np.float32), np.zeros(n, np.int64)
    casts[(1,)](x, h, i, o_bf, o_f, o_i)
    np.testing.assert_array_equal(o_bf.astype(np.float32), (x.astype(np.float32) * 2).astype(bf16).astype(np.float32))
    np.testing.assert_allclose(o_f, x.astype(np.float32) + h.astype(np.float32) + i, rtol=1e-6)
    np.testing.assert_array_equal(o_i, i.astype(np.int64) * 3 + 1)


@ts.kernel
def scalars(x: tile.Tensor["N", ts.f32], out: tile.Tensor["N", ts.f32], alpha: float, k: int, j: ts.i32,
            flag: bool, BLOCK: ts.constexpr = 16):
    v = tile.load(x[0:BLOCK])
    if flag:
        v = v * alpha + k
    else:
        v = v - j
    tile.store(out[0:BLOCK], v)


@pytest.mark.parametrize("flag", [True, False])
def test_scalar_params(rng, flag):
    x = rng.standard_normal(16).astype(np.float32)
    out = np.zeros(16, np.float32)
    scalars[(1,)](x, out, 1.5, 3, 7, flag)
    np.testing.assert_allclose(out, x * 1.5 + 3 if flag else x - 7, rtol=1e-6)


@ts.kernel
def fp8_roundtrip(x: tile.Tensor["N", ts.f32], q: tile.Tensor["N", ts.fp8_e4m3], y: tile.Tensor["N", ts.f32],
                  BLOCK: ts.constexpr = 64):
    i = tile.program_id(0) * BLOCK
    tile.store(q[i:i + BLOCK], tile.load(x[i:i + BLOCK]))      # f32 → fp8: round to nearest even
    tile.store(y[i:i + BLOCK], tile.load(q[i:i + BLOCK]))      # fp8 → f32


def test_fp8_e4m3_conversions_are_bit_exact(rng):
    f8 = ml_dtypes.float8_e4m3fn
    edge = [0, 1, -1, 0.5, 448, 460, 470, 500, 1e9, -1e9, 2 ** -9, 2 ** -10, 0.0013, 1.0625, 1.1875,
            np.nan, -0.0, 2 ** -7, 2 ** -6, 0.0029296875]
    x = np.concatenate([np.array(edge, np.float32),
                        (rng.standard_normal(3000) * np.exp(rng.uniform(-9, 7, 3000))).astype(np.float32)])
    q, y = np.zeros(len(x), f8), np.zeros_like(x)
    fp8_roundtrip[(-(-len(x) // 64),)](x, q, y)
    np.testing.assert_array_equal(q.view(np.uint8), x.astype(f8).view(np.uint8))
    np.testing.assert_array_equal(y, x.astype(f8).astype(np.float32))
