"""The persistent tile loop (`persistent=True`): at most one CTA per SM, each looping over the programs of
the caller's grid, which the kernel takes as three trailing parameters. Kernels run in the PTX emulator on
sm_80 and sm_90a with checks on, on 2 CTAs (TESSERA_PERSISTENT_CTAS) so every CTA runs several programs:
a memory-bound kernel, a 3-D grid, the cp.async + mma.sync GEMM, the TMA + wgmma GEMM (whose mbarriers are
invalidated and initialised again per program) with and without warp specialisation."""
import re

import ml_dtypes
import numpy as np
import pytest

import tessera as ts
from tessera import tile
from tessera.kernels import matmul, scale
from tessera.runtime.persistent import PersistentLauncher, launch_shape
from test_nvidia_compile import _have_ptxas

bf16 = ml_dtypes.bfloat16
needs_ptxas = pytest.mark.skipif(not _have_ptxas(), reason="ptxas not found (the NVIDIA stages need it)")


@ts.kernel
def grid3d(out: tile.Tensor["Z", "Y", "X", ts.f32], BX: ts.constexpr = 32):
    px, py, pz = tile.program_id(0), tile.program_id(1), tile.program_id(2)
    nx, ny = tile.num_programs(0), tile.num_programs(1)
    v = tile.full([BX], 1.0, ts.f32) * tile.cast(px + nx * (py + ny * pz), ts.f32)
    tile.store(out[pz, py, px * BX:px * BX + BX], v)


@pytest.fixture
def two_ctas(monkeypatch):
    monkeypatch.setenv("TESSERA_PERSISTENT_CTAS", "2")


@needs_ptxas
@pytest.mark.parametrize("target", ["sm_80", "sm_90a"])
def test_memory_bound_and_3d_grid(target, two_ctas):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(5000).astype(bf16)
    o = np.zeros_like(x)
    ck = ts.compile(scale, x, o, 2.0, target=target, persistent=True, BLOCK=1024)
    assert ck.metadata["persistent"] and [a["name"] for a in ck.metadata["args"][-3:]] == \
        ["__programs_x", "__programs_y", "__programs_z"]
    plain = ts.compile(scale, x, o, 2.0, target=target, BLOCK=1024)
    assert "%nctaid.x" in ck.asm["ptx"] and ck.asm["ptx"] != plain.asm["ptx"] and "persistent" not in plain.metadata
    rep = ck.emulate((5,), x, o, 2.0, BLOCK=1024)
    assert rep.grid == (2, 1, 1) and not rep.findings
    np.testing.assert_array_equal(o.astype(np.float32), 2 * x.astype(np.float32))

    out = np.zeros((3, 5, 4 * 32), np.float32)
    ck = ts.compile(grid3d, out, target=target, persistent=True)
    ck.emulate((4, 5, 3), out)
    want = np.arange(4 * 5 * 3, dtype=np.float32).reshape(3, 5, 4).repeat(32, axis=2)
    np.testing.assert_array_equal(out, want)


@needs_ptxas
@pytest.mark.parametrize("target,bm,bn,warps,ws,mma", [
    ("sm_80", 128, 128, 4, False, "mma.sync"), ("sm_80", 64, 64, 4, False, "mma.sync"),
    ("sm_90a", 128, 128, 4, False, "wgmma.mma_async"), ("sm_90a", 64, 64, 4, False, "wgmma.mma_async"),
    ("sm_90a", 128, 128, 8, True, "wgmma.mma_async")])
def test_gemm(target, bm, bn, warps, ws, mma, two_ctas):
    rng = np.random.default_rng(bm + bn + warps)
    m, n, k = 2 * bm + 44, 2 * bn - 56, 192
    a, b = rng.standard_normal((m, k)).astype(bf16), rng.standard_normal((k, n)).astype(bf16)
    c = np.zeros((m, n), np.float32)
    ck = ts.compile(matmul, a, b, c, target=target, num_warps=warps, warp_specialize=ws, persistent=True,
                    BM=bm, BN=bn, BK=64)
    assert mma in ck.asm["ptx"]
    if mma == "wgmma.mma_async":   # 2 full + 2 empty barriers per stage, invalidated at the end of each program
        assert ck.asm["ptx"].count("mbarrier.inval") == 6
    rep = ck.emulate((-(-m // bm), -(-n // bn)), a, b, c, BM=bm, BN=bn, BK=64)
    assert not rep.findings
    np.testing.assert_allclose(c, a.astype(np.float32) @ b.astype(np.float32), rtol=1e-3, atol=1e-3)


@needs_ptxas
def test_reinitialising_a_live_mbarrier_is_caught(two_ctas):
    """Without the invalidation, the second program's mbarrier.init meets live barriers: the emulator says so."""
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((256, 128)).astype(bf16), rng.standard_normal((128, 128)).astype(bf16)
    c = np.zeros((256, 128), np.float32)
    ck = ts.compile(matmul, a, b, c, target="sm_90a", persistent=True, BM=64, BN=128, BK=64)
    bad = re.sub(r"\n\s*mbarrier\.inval[^\n]*", "", ck.asm["ptx"])
    with pytest.raises(ts.SanitizerError) as e:
        ck.emulate((4, 1), a, b, c, BM=64, BN=128, BK=64, ptx=bad)
    assert e.value.kind == "mbarrier-reinit"


@needs_ptxas
def test_launch_option_through_the_kernel(monkeypatch, two_ctas):
    """`kernel[grid](..., persistent=True)` under TESSERA_BACKEND=emu compiles the persistent variant and
    launches it on the caller's grid; on the CPU backend the option changes nothing."""
    x = np.arange(3000, dtype=np.float32).astype(bf16)
    monkeypatch.setenv("TESSERA_BACKEND", "emu")
    monkeypatch.setenv("TESSERA_EMU_ARCH", "sm_80")
    o = np.zeros_like(x)
    ck = scale[(3,)](x, o, 3.0, BLOCK=1024, persistent=True)
    assert ck.metadata["persistent"]
    want = (3 * x.astype(np.float32)).astype(bf16).astype(np.float32)
    np.testing.assert_allclose(o.astype(np.float32), want, rtol=1e-2)
    monkeypatch.setenv("TESSERA_BACKEND", "cpu")
    o = np.zeros_like(x)
    scale[(3,)](x, o, 3.0, BLOCK=1024, persistent=True)
    np.testing.assert_allclose(o.astype(np.float32), want, rtol=1e-2)


def test_is_an_autotune_option():
    from tessera.runtime.autotune import OPTIONS
    assert "persistent" in OPTIONS


class _Recorder:
    def __init__(self):
        self.calls = []

    def launch(self, grid, args):
        self.calls.append(("launch", grid, args))

    def prepare(self, grid, args):
        self.calls.append(("prepare", grid, args))
        return lambda: self.calls.append(("run", grid))


def test_launch_shape_and_prepared_handles(monkeypatch):
    """The launch a persistent kernel gets: min(programs, CTAs) CTAs along x, the caller's grid appended to
    the arguments; a prepared handle prepares again when its grid changes (the grid is an argument)."""
    assert launch_shape((10, 3, 1), ("a",), 132) == ((30, 1, 1), ("a", 10, 3, 1))
    assert launch_shape((1000, 2, 2), (), 132) == ((132, 1, 1), (1000, 2, 2))
    with pytest.raises(ts.LaunchError):
        launch_shape((2 ** 31, 1, 1), (), 132)
    monkeypatch.setenv("TESSERA_PERSISTENT_CTAS", "8")
    rec = _Recorder()
    pl = PersistentLauncher(rec)
    pl.launch((100, 1, 1), ("x",))
    h = pl.prepare((4, 1, 1), ("x",))
    h()
    h.set_grid((50, 2, 1))
    h()
    assert rec.calls == [("launch", (8, 1, 1), ("x", 100, 1, 1)), ("prepare", (4, 1, 1), ("x", 4, 1, 1)),
                         ("run", (4, 1, 1)), ("prepare", (8, 1, 1), ("x", 50, 2, 1)), ("run", (8, 1, 1))]
    monkeypatch.setenv("TESSERA_PERSISTENT_CTAS", "zero")
    with pytest.raises(ts.LaunchError):
        pl.launch((1, 1, 1), ())


@needs_ptxas
def test_artifact_keeps_the_persistent_launch(tmp_path, two_ctas):
    """A saved persistent kernel records it in its manifest (with the hidden grid parameters in the ABI), and
    its PTX runs from the manifest alone as every launcher runs it (here the emulator's)."""
    import json
    from tessera.runtime.emulator.launch import run_ptx
    x = np.arange(4000, dtype=np.float32).astype(bf16)
    o = np.zeros_like(x)
    ck = ts.compile(scale, x, o, 2.0, target="sm_90a", persistent=True, BLOCK=1024)
    ck.save(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    meta = manifest["metadata"]
    assert meta["persistent"] and [a.get("hidden") for a in meta["args"][-3:]] == [True] * 3
    ptx = (tmp_path / f"{manifest['kernel']}.ptx").read_text()
    rep = run_ptx(ptx, manifest["kernel"], meta, "sm_90a", (4,), [x, o, 2.0])
    assert rep.grid == (2, 1, 1) and not rep.findings
    np.testing.assert_array_equal(o.astype(np.float32), 2 * x.astype(np.float32))
