"""Runtime and static loops, if on runtime values and constexprs, break and continue."""
import numpy as np
import pytest

import tessera as ts
from tessera import tile


@ts.kernel
def loops(x: tile.Tensor["N", ts.f32], out: tile.Tensor["K", ts.f32], n: int):
    acc = 0.0
    cnt = 0
    for i in range(0, n):                     # runtime loop with carried scalars
        if i == 5:
            continue
        if i > 8:
            break
        v = tile.load_scalar(x[i])
        if v > 0.0:                           # runtime if merging a scalar
            acc = acc + v
        else:
            acc = acc - v
        cnt += 1
    tile.store(out[0], acc)
    tile.store(out[1], cnt)
    total = 0.0
    for j in tile.static_range(3):            # unrolled
        total = total + tile.load_scalar(x[j]) * (j + 1)
    tile.store(out[2], total)
    s = 0.0
    for k in tile.range(2, n, 3):             # start, stop, step
        s += tile.load_scalar(x[k])
    tile.store(out[3], s)
    w = 0.0
    for coeff in [1.0, -2.0]:                 # Python list: unrolled
        w = w + coeff * tile.load_scalar(x[0])
    tile.store(out[4], w)


def test_loops_if_break_continue(rng):
    x = rng.standard_normal(20).astype(np.float32)
    out = np.zeros(5, np.float32)
    loops[(1,)](x, out, 20)
    kept = [i for i in range(9) if i != 5]
    np.testing.assert_allclose(out[0], sum(abs(x[i]) for i in kept), rtol=1e-5)
    assert out[1] == len(kept)
    np.testing.assert_allclose(out[2], x[0] + 2 * x[1] + 3 * x[2], rtol=1e-5)
    np.testing.assert_allclose(out[3], x[2:20:3].sum(), rtol=1e-5)
    np.testing.assert_allclose(out[4], -x[0], rtol=1e-5)


@ts.kernel
def constexpr_if(x: tile.Tensor["N", ts.f32], out: tile.Tensor["N", ts.f32], MODE: ts.constexpr = "relu",
                 BLOCK: ts.constexpr = 16):
    v = tile.load(x[0:BLOCK])
    if MODE == "relu":
        v = tile.maximum(v, 0.0)
    elif MODE == "neg":
        v = -v
    else:
        undefined_function(v)  # noqa: F821 - never compiled: the branch is resolved at compile time
    tile.store(out[0:BLOCK], v)


@pytest.mark.parametrize("mode", ["relu", "neg"])
def test_constexpr_if(rng, mode):
    x = rng.standard_normal(16).astype(np.float32)
    out = np.zeros(16, np.float32)
    constexpr_if[(1,)](x, out, MODE=mode)
    np.testing.assert_allclose(out, np.maximum(x, 0) if mode == "relu" else -x)


@ts.kernel
def tile_carry(x: tile.Tensor["M", "N", ts.f32], out: tile.Tensor["N", ts.f32], BN: ts.constexpr = 16):
    acc = tile.zeros([BN], ts.f32)
    for m in range(x.shape[0]):
        row = tile.load(x[m, 0:BN])
        if m % 2 == 0:
            acc = acc + row
        else:
            acc = tile.maximum(acc, row)
        if m >= 6:
            break
    tile.store(out[0:BN], acc)


def test_tile_carried_through_loop_and_if(rng):
    x = rng.standard_normal((10, 16)).astype(np.float32)
    out = np.zeros(16, np.float32)
    tile_carry[(1,)](x, out)
    acc = np.zeros(16, np.float32)
    for m in range(7):
        acc = acc + x[m] if m % 2 == 0 else np.maximum(acc, x[m])
    np.testing.assert_allclose(out, acc, rtol=1e-6)


@ts.kernel
def nested(out: tile.Tensor["M", "N", ts.i32], BN: ts.constexpr = 8):
    for i in range(out.shape[0]):
        for j0 in range(0, out.shape[1], BN):
            tile.store(out[i, j0:j0 + BN], tile.arange(0, BN) + j0 + i * 100)


def test_nested_runtime_loops():
    out = np.zeros((3, 20), np.int32)
    nested[(1,)](out)
    np.testing.assert_array_equal(out, np.arange(20)[None, :] + 100 * np.arange(3)[:, None])
