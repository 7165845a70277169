"""32-bit index arithmetic (tessera-narrow-index): the specialisation, its launch checks, its recompile
entry, and results that match the 64-bit variant's in the emulator on both targets."""
import re

import numpy as np
import pytest

import tessera as ts
from tessera import tile
from tessera.runtime import recompile
from test_nvidia_compile import _have_ptxas

TARGETS = ("sm_80", "sm_90a")
needs_ptxas = pytest.mark.skipif(not _have_ptxas(), reason="ptxas not found (the NVIDIA stages need it)")


@ts.kernel
def window_copy(x: tile.Tensor["N", ts.f32], out: tile.Tensor["M", ts.f32], start: int, BLOCK: ts.constexpr = 512):
    """out[i] = x[start + i], zero where start + i is outside x."""
    i = tile.program_id(0) * BLOCK
    tile.store(out[i:i + BLOCK], tile.load(x[start + i:start + i + BLOCK]))


def _expected(x, m, start):
    want = np.zeros(m, np.float32)
    for i in range(m):
        if 0 <= start + i < x.size:
            want[i] = x[start + i]
    return want


@needs_ptxas
@pytest.mark.parametrize("target", TARGETS)
def test_small_launch_is_specialised_and_checked(target):
    x = np.arange(1000, dtype=np.float32)
    out = np.zeros(1000, np.float32)
    ck = ts.compile(window_copy, x, out, 3, target=target)
    args = ck.metadata["args"]
    assert all(a.get("index32") for a in args), args
    assert re.search(r"setp\.\w+\.u32", ck.asm["ptx"]) and not re.search(r"setp\.\w+\.u64", ck.asm["ptx"])
    for start in (3, -5, 990, 5000):   # in bounds, before the start, across the end, wholly outside
        out[:] = -1
        ck.emulate((2,), x, out, start)
        np.testing.assert_array_equal(out, _expected(x, out.size, start), err_msg=f"start={start}")
    with pytest.raises(ts.LaunchError, match="32 bits"):
        ck.emulate((2,), x, out, 1 << 31)


@needs_ptxas
@pytest.mark.parametrize("target", TARGETS)
def test_large_integer_argument_gets_the_64_bit_variant(target, monkeypatch):
    monkeypatch.setenv("TESSERA_BACKEND", "emu")
    monkeypatch.setenv("TESSERA_EMU_ARCH", target)
    x = np.arange(1000, dtype=np.float32)
    out = np.zeros(1000, np.float32)
    small = window_copy[(2,)](x, out, 7)
    np.testing.assert_array_equal(out, _expected(x, 1000, 7))
    for start in ((1 << 32) + 7, -(1 << 40)):   # would alias index 7 / wrap if truncated to 32 bits
        out[:] = -1
        wide = window_copy[(2,)](x, out, start)
        assert not any(a.get("index32") for a in wide.metadata["args"])
        assert re.search(r"setp\.\w+\.u64", wide.asm["ptx"])
        np.testing.assert_array_equal(out, np.zeros(1000, np.float32), err_msg=f"start={start}")
    assert small.metadata["args"] != wide.metadata["args"]


def test_recompile_log_names_the_index_width():
    recompile.reset()

    @ts.kernel
    def shifted(x: tile.Tensor["N", ts.f32], out: tile.Tensor["N", ts.f32], start: int):
        tile.store(out[0:64], tile.load(x[start:start + 64]))
    x = np.zeros(64, np.float32)
    ts.compile(shifted, x, x, 1, target="sm_80")
    ts.compile(shifted, x, x, 1 << 31, target="sm_80")
    (event,) = ts.explain_recompiles(shifted).events
    assert ("index", "bits", 32, 64) in event.changes


def test_cpu_launches_are_not_specialised():
    from tessera.frontend.kernel import index32
    x = np.zeros(16, np.float32)
    bound = window_copy.specialise({"x": x, "out": x, "start": 1, "BLOCK": 512}, {}, "cpu")[0]
    assert not index32(bound)
    bound = window_copy.specialise({"x": x, "out": x, "start": 1, "BLOCK": 512}, {}, "sm_80")[0]
    assert index32(bound)
    bound = window_copy.specialise({"x": x, "out": x, "start": 1 << 31, "BLOCK": 512}, {}, "sm_80")[0]
    assert not index32(bound)
