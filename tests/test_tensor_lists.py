"""Kernels over lists of tensors (DESIGN §4, issue 11): `list[tile.Tensor]` parameters, `len(xs)` at
compile time, `xs[i]` with a runtime index, on the CPU backend and in the PTX emulator (sm_80, sm_90a)."""
from __future__ import annotations

import numpy as np
import pytest

import tessera as ts
from tessera import tile


@ts.kernel
def weighted_sum(xs: list[tile.Tensor], out: tile.Tensor["M", "N", ts.f32], BLOCK: ts.constexpr = 32):
    row = tile.program_id(0)
    acc = tile.zeros([BLOCK], ts.f32)
    for i in tile.range(len(xs)):
        acc = acc + tile.load(xs[i][row, 0:BLOCK]) * (i + 1)
    tile.store(out[row, 0:BLOCK], acc)


@ts.kernel
def named_dims(xs: list[tile.Tensor["M", "N", ts.f32]], w: tile.Tensor["L", ts.f32],
               out: tile.Tensor["M", "N", ts.f32]):
    ctx = tile.context()
    row = tile.program_id(0)
    acc = tile.zeros([ctx.N], ts.f32)
    for i in tile.static_range(len(xs)):
        acc = acc + tile.load(xs[i][row, :]) * tile.load_scalar(w[i])
    last = xs[-1]
    tile.store(out[row, :], acc - tile.load(last[row, :]))


@ts.kernel
def python_iteration(xs: list[tile.Tensor], ys: list[tile.Tensor], out: tile.Tensor["N", ts.f32],
                     BLOCK: ts.constexpr = 64):
    start = tile.program_id(0) * BLOCK
    acc = tile.zeros([BLOCK], ts.f32)
    for k, (x, y) in enumerate(zip(xs, ys)):
        acc = acc + tile.load(x[start:start + BLOCK]) * tile.load(y[start:start + BLOCK]) + k
    for x in xs:
        acc = acc + x.shape[0] * 0.0 + tile.load(x[start:start + BLOCK])
    tile.store(out[start:start + BLOCK], acc)


@ts.kernel
def scatter_rows(xs: list[tile.Tensor], src: tile.Tensor["M", "N", ts.f32], BLOCK: ts.constexpr = 16):
    row = tile.program_id(0)
    for i in tile.range(len(xs)):
        tile.store(xs[i][row, 0:BLOCK], tile.load(src[row, 0:BLOCK]) + i)


def _lists(rng, n=3, shape=(5, 20)):
    return [rng.standard_normal(shape).astype(np.float32) for _ in range(n)]


def test_runtime_index_cpu():
    rng = np.random.default_rng(0)
    xs = _lists(rng)
    out = np.zeros((5, 20), np.float32)
    weighted_sum[(5,)](xs, out)
    np.testing.assert_allclose(out, sum(x * (i + 1) for i, x in enumerate(xs)), rtol=1e-6, atol=1e-6)


def test_strided_elements_and_other_lengths():
    rng = np.random.default_rng(1)
    big = rng.standard_normal((4, 10, 40)).astype(np.float32)
    xs = [big[0, :, ::2], big[1, :, 1::2], big[2].T[:10, :10].copy()]   # any strides, one shape
    xs[2] = np.ascontiguousarray(big[2, :, :20])
    out = np.zeros((10, 20), np.float32)
    weighted_sum[(10,)](xs, out)
    np.testing.assert_allclose(out, sum(x * (i + 1) for i, x in enumerate(xs)), rtol=1e-6, atol=1e-6)
    five = _lists(rng, 5, (10, 20))
    weighted_sum[(10,)](five, out)   # another length compiles another variant
    np.testing.assert_allclose(out, sum(x * (i + 1) for i, x in enumerate(five)), rtol=1e-6, atol=1e-6)


def test_named_dims_and_static_index():
    rng = np.random.default_rng(2)
    xs = _lists(rng, 4, (6, 16))
    w = rng.standard_normal(4).astype(np.float32)
    out = np.zeros((6, 16), np.float32)
    named_dims[(6,)](xs, w, out)
    ref = sum(x * w[i] for i, x in enumerate(xs)) - xs[-1]
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_python_iteration_over_lists():
    rng = np.random.default_rng(3)
    xs, ys = _lists(rng, 2, (128,)), _lists(rng, 2, (128,))
    out = np.zeros(128, np.float32)
    python_iteration[(2,)](xs, ys, out)
    ref = sum(x * y + k for k, (x, y) in enumerate(zip(xs, ys))) + sum(xs)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_stores_into_list_elements():
    rng = np.random.default_rng(4)
    xs = [np.zeros((3, 16), np.float32) for _ in range(3)]
    src = rng.standard_normal((3, 16)).astype(np.float32)
    scatter_rows[(3,)](xs, src)
    for i, x in enumerate(xs):
        np.testing.assert_array_equal(x, src + i)


@pytest.mark.parametrize("target", ["sm_80", "sm_90a"])
def test_emulated(target):
    """The device ABI: the table is a device array of (address, sizes, strides) rows the kernel reads."""
    rng = np.random.default_rng(5)
    xs = _lists(rng, 3, (4, 20))
    out = np.zeros((4, 20), np.float32)
    ck = ts.compile(weighted_sum, xs, out, target=target)
    assert "tile.list_get" in ck.asm["tile"]
    ck.emulate((4,), xs, out)
    np.testing.assert_allclose(out, sum(x * (i + 1) for i, x in enumerate(xs)), rtol=1e-6, atol=1e-6)
    w = rng.standard_normal(3).astype(np.float32)
    ck = ts.compile(named_dims, xs, w, out, target=target)
    ck.emulate((4,), xs, w, out)
    np.testing.assert_allclose(out, sum(x * w[i] for i, x in enumerate(xs)) - xs[-1], rtol=1e-5, atol=1e-5)
    ys = [np.zeros((4, 16), np.float32) for _ in range(2)]
    src = rng.standard_normal((4, 16)).astype(np.float32)
    ck = ts.compile(scatter_rows, ys, src, target=target)
    ck.emulate((4,), ys, src)
    for i, y in enumerate(ys):
        np.testing.assert_array_equal(y, src + i)


def test_prepared_launch_and_abi():
    rng = np.random.default_rng(6)
    xs = _lists(rng, 2, (3, 20))
    out = np.zeros((3, 20), np.float32)
    h = weighted_sum.prepare(xs, out, grid=(3,))
    xs[0][...] = 1.0
    h()
    np.testing.assert_allclose(out, xs[0] + 2 * xs[1], rtol=1e-6)
    ck = ts.compile(weighted_sum, xs, out, target="cpu")
    spec = ck.metadata["args"][0]
    assert spec["kind"] == "tensor_list" and spec["length"] == 2 and spec["rank"] == 2 and spec["dtype"] == "f32"
    with pytest.raises(ts.LaunchError, match="list of 2 tensors, got 3"):
        ck[(3,)](xs + xs[:1], out)


def test_autotune_key_num_layers():
    @ts.kernel.autotune(space=dict(BLOCK=[32, 64]), key=["N", "num_layers"])
    def tuned(xs: list[tile.Tensor["M", "N", ts.f32]], out: tile.Tensor["M", "N", ts.f32]):
        ctx = tile.context()
        row = tile.program_id(0)
        acc = tile.zeros([ctx.BLOCK], ts.f32)
        for i in tile.range(len(xs)):
            acc = acc + tile.load(xs[i][row, 0:ctx.BLOCK])
        tile.store(out[row, 0:ctx.BLOCK], acc)
    rng = np.random.default_rng(7)
    xs = _lists(rng, 3, (2, 30))
    out = np.zeros((2, 30), np.float32)
    tuned[(2,)](xs, out)
    np.testing.assert_allclose(out, sum(xs), rtol=1e-6)
    assert tuned._key({"xs": xs, "out": out}, {"N": 30}, "cpu")["num_layers"] == 3


def test_bad_lists_are_located_errors():
    rng = np.random.default_rng(8)
    out = np.zeros((2, 20), np.float32)
    with pytest.raises(ts.CompilationError, match="empty list") as e:
        weighted_sum[(2,)]([], out)
    assert e.value.filename == __file__
    with pytest.raises(ts.DTypeError, match="one dtype"):
        weighted_sum[(2,)]([np.zeros((2, 20), np.float32), np.zeros((2, 20), np.float64)], out)
    with pytest.raises(ts.ShapeError, match="one rank"):
        weighted_sum[(2,)]([np.zeros((2, 20), np.float32), np.zeros((2, 20, 1), np.float32)], out)
    with pytest.raises(ts.ShapeError, match=r"xs\[\*\]\.shape\[1\]") as e:
        weighted_sum[(2,)]([np.zeros((2, 20), np.float32), np.zeros((2, 21), np.float32)], out)
    assert e.value.filename == __file__
    with pytest.raises(ts.ShapeError, match="dim 'N'"):
        named_dims[(2,)](_lists(rng, 2, (2, 16)), np.zeros(2, np.float32), out)
    with pytest.raises(ts.CompilationError, match="must be a list of arrays"):
        weighted_sum[(2,)](out, out)

    @ts.kernel
    def out_of_range(xs: list[tile.Tensor], out: tile.Tensor["M", "N", ts.f32]):
        tile.store(out[0, 0:4], tile.load(xs[2][0, 0:4]))

    @ts.kernel
    def list_shape(xs: list[tile.Tensor], out: tile.Tensor["M", "N", ts.f32]):
        tile.store(out[0, 0:4], tile.zeros([4], ts.f32) + xs.shape[0])

    with pytest.raises(ts.CompilationError, match="out of range for the list 'xs' of 2") as e:
        out_of_range[(1,)](_lists(rng, 2, (2, 20)), out)
    assert "xs[2]" in str(e.value) and "^" in str(e.value)
    with pytest.raises(ts.CompilationError, match="no attribute 'shape'"):
        list_shape[(1,)](_lists(rng, 2, (2, 20)), out)
