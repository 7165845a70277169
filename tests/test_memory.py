"""Views, bounds, masks, strides, shared buffers and async copies on the CPU backend."""
import ml_dtypes
import numpy as np

import tessera as ts
from tessera import tile

bf16 = ml_dtypes.bfloat16


@ts.kernel
def copy2d(x: tile.Tensor["M", "N", ts.f32], y: tile.Tensor["M", "N", ts.f32],
           BM: ts.constexpr = 8, BN: ts.constexpr = 8):
    m0 = tile.program_id(0) * BM
    n0 = tile.program_id(1) * BN
    tile.store(y[m0:m0 + BM, n0:n0 + BN], tile.load(x[m0:m0 + BM, n0:n0 + BN]))


def test_noncontiguous_views(rng):
    base = rng.standard_normal((30, 40)).astype(np.float32)
    src = base[::2, ::3]          # strided input
    dst_base = np.zeros((40, 30), np.float32)
    dst = dst_base.T[:15, :14]    # transposed (column-major) output view
    copy2d[(2, 2)](src, dst)
    np.testing.assert_array_equal(dst, src)
    untouched = dst_base.copy()
    untouched.T[:15, :14] = 0
    assert not untouched.any(), "only the view may be written"


def test_negative_strides(rng):
    base = rng.standard_normal((9, 11)).astype(np.float32)
    src = base[::-1, ::-1]
    dst = np.zeros((9, 11), np.float32)
    copy2d[(2, 2)](src, dst)
    np.testing.assert_array_equal(dst, src)


@ts.kernel
def masked(x: tile.Tensor["N", ts.f32], out: tile.Tensor["N", ts.f32], thr: float, BLOCK: ts.constexpr = 32):
    idx = tile.arange(0, BLOCK)
    v = tile.load(x[0:BLOCK], mask=idx % 2 == 0, other=-1.0)
    tile.store(out[0:BLOCK], v, mask=v > thr)


def test_mask_and_other(rng):
    x = rng.standard_normal(20).astype(np.float32)
    out = np.full(20, 5.0, np.float32)
    masked[(1,)](x, out, 0.0)
    v = np.where(np.arange(20) % 2 == 0, x, -1.0)
    np.testing.assert_array_equal(out, np.where(v > 0.0, v, 5.0))


@ts.kernel
def scalar_io(x: tile.Tensor["N", ts.f32], idx: tile.Tensor["K", ts.i32], out: tile.Tensor["K", ts.f32]):
    k = tile.program_id(0)
    i = tile.load_scalar(idx[k])
    v = tile.load_scalar(x[i])
    last = tile.load_scalar(x[-1])
    tile.store(out[k], v + last)


def test_load_scalar_gather(rng):
    x = rng.standard_normal(10).astype(np.float32)
    idx = np.array([3, 0, 9, 4], np.int32)
    out = np.zeros(4, np.float32)
    scalar_io[(4,)](x, idx, out)
    np.testing.assert_allclose(out, x[idx] + x[-1], rtol=1e-6)


@ts.kernel
def blocks(x: tile.Tensor["B", "S", "D", ts.f32], out: tile.Tensor["B", "S", "D", ts.f32],
           BLOCK_S: ts.constexpr = 8):
    ctx = tile.context()
    b = tile.program_id(0)
    s0 = tile.program_id(1) * BLOCK_S
    blk = tile.load_block(x, b, s0, 1, BLOCK_S)       # [1, BLOCK_S, D]
    acc = tile.alloc_shared([BLOCK_S, ctx.D], ts.f32)
    tile.fill(acc, 1.0)
    tile.accumulate(acc, blk)
    tile.store_block(out, acc, b, s0)


def test_load_block_store_block(rng):
    x = rng.standard_normal((2, 13, 6)).astype(np.float32)
    out = np.zeros_like(x)
    blocks[(2, 2)](x, out)
    np.testing.assert_allclose(out, x + 1.0, rtol=1e-6)


@ts.kernel
def shared_pipeline(x: tile.Tensor["M", "N", ts.bf16], out: tile.Tensor["M", "N", ts.f32],
                    BM: ts.constexpr = 16, BN: ts.constexpr = 16):
    m0 = tile.program_id(0) * BM
    buf = tile.alloc_shared([BM, BN], ts.bf16, swizzle="xor")
    tile.cp_async(buf, x[m0:m0 + BM, 0:BN])       # out-of-bounds lanes zero-filled
    tile.cp_commit_group()
    tile.cp_wait_group(0)
    tile.barrier()
    acc = tile.alloc_shared([BM, BN], ts.f32)
    tile.fill(acc, 0.0)
    tile.accumulate(acc, buf)                      # a shared buffer used as a tile
    tile.accumulate(acc, tile.load(buf) * 2.0)
    tile.store(out[m0:m0 + BM, 0:BN], acc)


def test_shared_buffers_and_cp_async(rng):
    x = rng.standard_normal((20, 10)).astype(bf16)
    out = np.zeros((20, 10), np.float32)
    shared_pipeline[(2,)](x, out)
    np.testing.assert_allclose(out, 3 * x.astype(np.float32), rtol=1e-6)


@ts.kernel
def views_of_views(x: tile.Tensor["B", "N", ts.f32], out: tile.Tensor["B", "N", ts.f32], BLOCK: ts.constexpr = 4):
    b = tile.program_id(0)
    row = x[b]
    orow = out[b]
    for n0 in tile.range(0, x.shape[1], BLOCK):
        tile.store(orow[n0:n0 + BLOCK], tile.load(row[n0:n0 + BLOCK]) + 1.0)


def test_views_of_views(rng):
    x = rng.standard_normal((3, 10)).astype(np.float32)
    out = np.zeros_like(x)
    views_of_views[(3,)](x, out)
    np.testing.assert_allclose(out, x + 1, rtol=1e-6)


@ts.kernel
def bool_io(x: tile.Tensor["N", ts.f32], m: tile.Tensor["N", ts.bool], out: tile.Tensor["N", ts.bool],
            BLOCK: ts.constexpr = 16):
    keep = tile.load(m[0:BLOCK])
    v = tile.load(x[0:BLOCK])
    tile.store(out[0:BLOCK], keep & (v > 0.0))


def test_bool_tensors(rng):
    x = rng.standard_normal(16).astype(np.float32)
    m = rng.integers(0, 2, 16).astype(bool)
    out = np.zeros(16, bool)
    bool_io[(1,)](x, m, out)
    np.testing.assert_array_equal(out, m & (x > 0))
