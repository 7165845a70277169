"""The vectorised CPU backend (issue 17): tile.mma's micro-kernel, vector reductions, the polynomial expf,
vector-transfer loads and stores (with their lane-by-lane fallbacks), and tile buffers in one scratch per
launch. Each compares against NumPy on shapes that take the vector path and shapes that take the fallback."""
import re

import ml_dtypes
import numpy as np
import pytest

import tessera as ts
from tessera import tile
from tessera.errors import OutOfResources


@ts.kernel
def matmul(a: tile.Tensor["M", "K", ts.f32], b: tile.Tensor["K", "N", ts.f32], c: tile.Tensor["M", "N", ts.f32],
           BM: ts.constexpr = 32, BN: ts.constexpr = 32, BK: ts.constexpr = 16):
    m0 = tile.program_id(0) * BM
    n0 = tile.program_id(1) * BN
    acc = tile.zeros((BM, BN), ts.f32)
    for k0 in tile.range(0, a.shape[1], BK):
        acc = tile.mma(tile.load(a[m0:m0 + BM, k0:k0 + BK]), tile.load(b[k0:k0 + BK, n0:n0 + BN]), acc)
    tile.store(c[m0:m0 + BM, n0:n0 + BN], acc)


@ts.kernel
def matmul_bf16(a: tile.Tensor["M", "K", ts.bf16], b: tile.Tensor["K", "N", ts.bf16],
                c: tile.Tensor["M", "N", ts.f32], BM: ts.constexpr = 16, BN: ts.constexpr = 64,
                BK: ts.constexpr = 32):
    m0 = tile.program_id(0) * BM
    n0 = tile.program_id(1) * BN
    acc = tile.zeros((BM, BN), ts.f32)
    for k0 in tile.range(0, a.shape[1], BK):
        acc = tile.mma(tile.load(a[m0:m0 + BM, k0:k0 + BK]), tile.load(b[k0:k0 + BK, n0:n0 + BN]), acc)
    tile.store(c[m0:m0 + BM, n0:n0 + BN], acc)


@ts.kernel
def row_stats(x: tile.Tensor["M", "N", ts.f32], total: tile.Tensor["M", ts.f32], peak: tile.Tensor["M", ts.f32],
              col_total: tile.Tensor["G", "C", ts.f32], BM: ts.constexpr = 8, BN: ts.constexpr = 64):
    m0 = tile.program_id(0) * BM
    t = tile.load(x[m0:m0 + BM, 0:BN], other=-1.0)
    tile.store(total[m0:m0 + BM], tile.sum(t, axis=1))
    tile.store(peak[m0:m0 + BM], tile.max(t, axis=1))
    tile.store(col_total[tile.program_id(0), 0:BN], tile.sum(t, axis=0))


@ts.kernel
def exp_kernel(x: tile.Tensor["N", ts.f32], out: tile.Tensor["N", ts.f32], BLOCK: ts.constexpr = 256):
    off = tile.program_id(0) * BLOCK
    tile.store(out[off:off + BLOCK], tile.exp(tile.load(x[off:off + BLOCK])))


@ts.kernel
def shifted_copy(x: tile.Tensor["M", "N", ts.f32], out: tile.Tensor["M", "N", ts.f32], shift: int,
                 BM: ts.constexpr = 4, BN: ts.constexpr = 16):
    m0 = tile.program_id(0) * BM
    n0 = tile.program_id(1) * BN + shift
    tile.store(out[m0:m0 + BM, n0:n0 + BN], tile.load(x[m0:m0 + BM, n0:n0 + BN], other=7.0) + 1.0)


@ts.kernel
def huge_tile(x: tile.Tensor["N", ts.f32], out: tile.Tensor["N", ts.f32], BLOCK: ts.constexpr = 1 << 25):
    off = tile.program_id(0) * BLOCK
    tile.store(out[off:off + BLOCK], tile.load(x[off:off + BLOCK]) * 2.0)


def _grid(m, n, bm, bn):
    return (-(-m // bm), -(-n // bn))


@pytest.mark.parametrize("m,k,n", [(64, 64, 64), (45, 37, 70), (1, 16, 33)])
def test_matmul_f32_against_numpy(m, k, n):
    rng = np.random.default_rng(m * 1000 + n)
    a, b = rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((k, n)).astype(np.float32)
    c = np.full((m, n), np.nan, np.float32)
    matmul[_grid(m, n, 32, 32)](a, b, c)
    np.testing.assert_allclose(c, a.astype(np.float64) @ b.astype(np.float64), rtol=1e-5, atol=1e-4)


def test_matmul_transposed_views_take_the_lane_by_lane_path():
    """Operands whose innermost stride is not 1 are gathered element by element: same result."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal((40, 48)).astype(np.float32).T     # 48 x 40, column-major
    b = rng.standard_normal((40, 36)).astype(np.float32)
    c = np.zeros((48, 36), np.float32)
    matmul[_grid(48, 36, 32, 32)](a, b, c)
    np.testing.assert_allclose(c, a.astype(np.float64) @ b, rtol=1e-5, atol=1e-4)


def test_matmul_bf16_operands_widened_once_per_tile():
    rng = np.random.default_rng(4)
    a = rng.standard_normal((48, 96)).astype(ml_dtypes.bfloat16)
    b = rng.standard_normal((96, 128)).astype(ml_dtypes.bfloat16)
    c = np.zeros((48, 128), np.float32)
    ck = ts.compile(matmul_bf16, a, b, c, target="cpu")
    # one widening of each loaded tile before the product (not one conversion per multiply-add)
    assert "arith.extf" in ck.asm["tile"] or "tile.mma" in ck.asm["tile"]
    matmul_bf16[_grid(48, 128, 16, 64)](a, b, c)
    ref = a.astype(np.float32).astype(np.float64) @ b.astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(c, ref, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("m,n", [(16, 64), (13, 50)])
def test_reductions_against_numpy(m, n):
    rng = np.random.default_rng(m + n)
    x = rng.standard_normal((m, n)).astype(np.float32)
    total, peak = np.zeros(m, np.float32), np.zeros(m, np.float32)
    grid = -(-m // 8)
    cols = np.zeros((grid, 64), np.float32)
    row_stats[(grid,)](x, total, peak, cols)
    padded = np.full((grid * 8, 64), -1.0, np.float64)
    padded[:m, :n] = x
    np.testing.assert_allclose(total, padded[:m].sum(1), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(peak, padded[:m].max(1).astype(np.float32))
    np.testing.assert_allclose(cols[:, :n], padded.reshape(grid, 8, 64).sum(1)[:, :n], rtol=1e-5, atol=1e-5)


def test_exp_within_two_ulp_and_special_values():
    x = np.concatenate([np.linspace(-110, 90, 60000, dtype=np.float32),
                        np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 88.72, 88.8, -87.5, -103.9, -104.5, 1e-8],
                                 np.float32)])
    x = np.pad(x, (0, -len(x) % 256))
    out = np.empty_like(x)
    exp_kernel[(len(x) // 256,)](x, out)
    with np.errstate(over="ignore"):
        ref = np.exp(x.astype(np.float64)).astype(np.float32)
    finite = np.isfinite(ref) & (ref > 0)
    ulp = np.abs(out.view(np.int32).astype(np.int64) - ref.view(np.int32).astype(np.int64))
    assert ulp[finite].max() <= 2
    assert np.isnan(out[np.isnan(x)]).all()
    assert (out[np.isposinf(ref)] == np.inf).all() and (out[ref == 0] == 0).all()


@pytest.mark.parametrize("shift", [0, 5, -3])
def test_partial_windows_pad_and_clip_like_the_scalar_path(shift):
    """Windows crossing the array's end (masked transfers) and starting before it (negative column offsets:
    the lane-by-lane path) give `other` outside and store nothing there."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((10, 37)).astype(np.float32)
    out = np.full_like(x, -5.0)
    shifted_copy[(3, 3)](x, out, shift)
    expect = np.full_like(x, -5.0)
    for p in range(3):
        for q in range(3):
            r0, c0 = p * 4, q * 16 + shift
            for i in range(r0, r0 + 4):
                for j in range(c0, c0 + 16):
                    if 0 <= i < 10 and 0 <= j < 37:
                        expect[i, j] = x[i, j] + 1.0
    np.testing.assert_array_equal(out, expect)


def test_program_tiles_live_in_one_scratch_per_launch():
    """No allocation inside a program: the tiles are views of the scratch the launch entry allocates."""
    x = np.zeros((16, 64), np.float32)
    ck = ts.compile(row_stats, x, np.zeros(16, np.float32), np.zeros(16, np.float32), np.zeros((2, 64), np.float32),
                    target="cpu")
    llvm = ck.asm["llvm"]
    program = re.search(r"llvm\.func (internal |private )?@row_stats\(.*?\n  \}", llvm, re.S)
    assert program is not None
    assert "@malloc" not in program.group(0) and "@free" not in program.group(0)
    entry = re.search(r"llvm\.func @row_stats_range\(.*?\n  \}", llvm, re.S).group(0)
    assert entry.count("@malloc") == 1     # once per launch (per thread's chunk), however many programs


def test_tile_buffers_past_the_budget_are_out_of_resources():
    x = np.zeros(16, np.float32)
    with pytest.raises(OutOfResources) as e:
        ts.compile(huge_tile, x, x, target="cpu")
    assert "test_cpu_vectorize.py" in str(e.value) and "budget" in str(e.value)
