"""String annotations (`from __future__ import annotations`) and kernels defined inside functions."""
from __future__ import annotations

import numpy as np

import tessera as ts
from tessera import tile


def test_nested_kernel_with_string_annotations():
    @ts.kernel
    def add_one(x: tile.Tensor["N", ts.f32], out: tile.Tensor["N", ts.f32], BLOCK: ts.constexpr = 8):
        i = tile.program_id(0) * BLOCK
        tile.store(out[i:i + BLOCK], tile.load(x[i:i + BLOCK]) + 1.0)

    x = np.arange(20, dtype=np.float32)
    out = np.zeros_like(x)
    ck = add_one[(3,)](x, out)
    np.testing.assert_array_equal(out, x + 1)
    assert [a["name"] for a in ck.metadata["args"]] == ["x", "out"], "BLOCK is a constexpr, not an argument"


def test_unannotated_parameters_follow_the_values():
    @ts.kernel
    def axpy(x, y, out, a, BLOCK: ts.constexpr = 16):
        tile.store(out[0:BLOCK], tile.load(x[0:BLOCK]) * a + tile.load(y[0:BLOCK]))

    x, y = np.ones(16, np.float32), np.full(16, 2.0, np.float32)
    out = np.zeros(16, np.float32)
    axpy[(1,)](x, y, out, 3.0)
    np.testing.assert_array_equal(out, 5.0)
