"""The mma.sync cp.async pipeline (`tessera-pipeline-mma` + backends/nvidia/mma_pipeline.py): K loops
of tile.mma on 16-bit tiles run in the PTX emulator on sm_80 and sm_90a with the checks on, for every
num_stages, warp grids of 4 and 8 warps, ragged and unaligned tensors, batched (squeezed) windows, a
non-zero initial accumulator and results used by more than a store; the structure the issue asks for
is pinned on the PTX (stages, register accumulators, no spills at the two reference shapes)."""
import re

import ml_dtypes
import numpy as np
import pytest

import tessera as ts
from tessera import tile
from tessera.kernels import matmul
from test_nvidia_compile import _have_ptxas

bf16 = ml_dtypes.bfloat16
pytestmark = pytest.mark.skipif(not _have_ptxas(), reason="ptxas not found (the NVIDIA stages need it)")


@ts.kernel
def gemm_epilogue(a: tile.Tensor["M", "K", ts.f16], b: tile.Tensor["K", "N", ts.f16], c: tile.Tensor["M", "N", ts.f16],
                  BM: ts.constexpr = 64, BN: ts.constexpr = 32, BK: ts.constexpr = 32):
    pm, pn = tile.program_id(0), tile.program_id(1)
    acc = tile.full([BM, BN], 0.25, ts.f32)
    for k0 in tile.range(0, a.shape[1], BK):
        acc = tile.mma(tile.load(a[pm * BM:pm * BM + BM, k0:k0 + BK]), tile.load(b[k0:k0 + BK, pn * BN:pn * BN + BN]), acc)
    tile.store(c[pm * BM:pm * BM + BM, pn * BN:pn * BN + BN], tile.cast(acc * 0.5 - 1.0, ts.f16))


@ts.kernel
def batched(a: tile.Tensor["B", "M", "K", ts.bf16], b: tile.Tensor["B", "K", "N", ts.bf16],
            c: tile.Tensor["B", "M", "N", ts.f32], BM: ts.constexpr = 32, BN: ts.constexpr = 64, BK: ts.constexpr = 16):
    pm, pn, pb = tile.program_id(0), tile.program_id(1), tile.program_id(2)
    acc = tile.zeros([BM, BN], ts.f32)
    for k0 in tile.range(0, a.shape[2], BK):
        acc = tile.mma(tile.load(a[pb, pm * BM:pm * BM + BM, k0:k0 + BK]),
                       tile.load(b[pb, k0:k0 + BK, pn * BN:pn * BN + BN]), acc)
    tile.store(c[pb, pm * BM:pm * BM + BM, pn * BN:pn * BN + BN], acc)


def _rand(rng, shape, dt):
    return rng.standard_normal(shape).astype(dt)


def _check(got, want, tol=2e-2):
    np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=tol, atol=tol)


@pytest.mark.parametrize("target", ["sm_80", "sm_90a"])
@pytest.mark.parametrize("m,k,n,bm,bn,bk,warps,stages", [
    (200, 77, 130, 64, 64, 32, 4, 3),      # ragged and unaligned (K = 77: rows are not 16-byte multiples)
    (256, 96, 256, 128, 128, 32, 4, 3),    # the reference 128x128x32 / 4 warps, aligned
    (130, 64, 264, 128, 256, 32, 8, 3),    # the reference 128x256x32 / 8 warps
    (100, 100, 100, 64, 64, 32, 4, 1),     # num_stages = 1: load, wait, compute
    (96, 160, 96, 64, 64, 64, 4, 2),
    (64, 256, 64, 32, 64, 16, 2, 4),
])
def test_pipelined_gemm_in_emulator(target, m, k, n, bm, bn, bk, warps, stages):
    rng = np.random.default_rng(m + k + n)
    a, b = _rand(rng, (m, k), bf16), _rand(rng, (k, n), bf16)
    c = np.zeros((m, n), np.float32)
    ck = ts.compile(matmul, a, b, c, target=target, BM=bm, BN=bn, BK=bk, num_warps=warps, num_stages=stages)
    ptx = ck.asm["ptx"]
    # (sm_90a takes TMA + wgmma where its tile shapes allow: aligned tensors, BK = 64)
    assert ("mma.sync.aligned.m16n8k16" in ptx and "cp.async.cg.shared.global" in ptx) or \
        (target == "sm_90a" and "wgmma.mma_async" in ptx)
    rep = ck.emulate(((m + bm - 1) // bm, (n + bn - 1) // bn), a, b, c, BM=bm, BN=bn, BK=bk)
    _check(c, a.astype(np.float32) @ b.astype(np.float32), 1e-4)
    assert not rep.findings
    if k % 8 == 0 and n % 8 == 0:   # tensors of the aligned stride class: every cp.async and ldmatrix conflict-free
        assert rep.shared_bank_conflicts == 0, rep.bank_conflicts_by_line


@pytest.mark.parametrize("target", ["sm_80", "sm_90a"])
def test_epilogue_through_blocked_layout_and_splat_init(target):
    rng = np.random.default_rng(3)
    a, b = _rand(rng, (100, 70), np.float16), _rand(rng, (70, 60), np.float16)
    c = np.zeros((100, 60), np.float16)
    ck = ts.compile(gemm_epilogue, a, b, c, target=target)
    assert "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32" in ck.asm["ptx"]
    ck.emulate((2, 2), a, b, c)
    _check(c, (a.astype(np.float32) @ b.astype(np.float32) + 0.25) * 0.5 - 1.0)


@pytest.mark.parametrize("target", ["sm_80", "sm_90a"])
def test_batched_windows(target):
    rng = np.random.default_rng(4)
    a, b = _rand(rng, (3, 40, 48), bf16), _rand(rng, (3, 48, 70), bf16)
    c = np.zeros((3, 40, 70), np.float32)
    ck = ts.compile(batched, a, b, c, target=target)
    assert "cp.async.cg.shared.global" in ck.asm["ptx"]
    ck.emulate((2, 2, 3), a, b, c)
    _check(c, a.astype(np.float32) @ b.astype(np.float32), 1e-4)


def test_num_stages_change_the_pipeline():
    a = np.zeros((256, 256), bf16)
    c = np.zeros((256, 256), np.float32)
    waits = {}
    for stages in (2, 3, 4):
        ck = ts.compile(matmul, a, a, c, target="sm_80", BM=64, BN=64, BK=32, num_stages=stages)
        ptx = ck.asm["ptx"]
        waits[stages] = set(re.findall(r"cp\.async\.wait_group\s+(\d+);", ptx))
        assert ck.metadata["shared_bytes"] >= stages * (64 * 32 + 32 * 64) * 2
    assert waits == {2: {"0"}, 3: {"1"}, 4: {"2"}}


@pytest.mark.parametrize("bm,bn,warps", [(128, 128, 4), (128, 256, 8)])
def test_reference_shapes_have_no_spills_and_register_accumulators(bm, bn, warps):
    a = np.zeros((512, 512), bf16)
    c = np.zeros((512, 512), np.float32)
    ck = ts.compile(matmul, a, a, c, target="sm_80", BM=bm, BN=bn, BK=32, num_warps=warps, num_stages=3)
    assert ck.metadata["spill_stores"] == 0 and ck.metadata["spill_loads"] == 0
    ptx = ck.asm["ptx"]
    # operands by cp.async and ldmatrix, accumulators in registers, stored straight to global memory
    assert "st.shared" not in ptx and "ld.shared" not in ptx
    assert ptx.count("mma.sync") == (bm * bn // warps) // (16 * 8) * 2    # two k16 steps per BK = 32
    assert ptx.count("ldmatrix") == 2 * ((bm * bn // warps) // (64 * 64) * 8)


def test_f16_wgmma_in_emulator():
    """The sm_90a TMA + wgmma path on f16 operands (the emulator's wgmma reads f16 as well as bf16)."""
    rng = np.random.default_rng(5)
    a, b = _rand(rng, (256, 192), np.float16), _rand(rng, (192, 256), np.float16)
    c = np.zeros((256, 256), np.float32)
    ck = ts.compile(matmul, a, b, c, target="sm_90a", BM=128, BN=128, BK=64)
    assert "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16" in ck.asm["ptx"]
    rep = ck.emulate((2, 2), a, b, c, BM=128, BN=128, BK=64)
    _check(c, a.astype(np.float32) @ b.astype(np.float32), 1e-3)
    assert not rep.findings


@pytest.mark.parametrize("bm,bn,warps,mma", [(128, 256, 8, "m64n256k16"), (256, 128, 8, "m64n128k16"),
                                             (128, 128, 8, "m64n128k16"), (64, 256, 4, "m64n256k16"),
                                             (64, 64, 4, "m64n64k16"), (128, 64, 4, "m64n64k16"),
                                             (64, 24, 4, "m64n24k16"), (128, 200, 8, "m64n200k16"),
                                             (64, 8, 4, "m64n8k16")])
def test_wgmma_tile_shapes_and_two_warpgroups(bm, bn, warps, mma):
    """sm_90a TMA + wgmma beyond 128x128 / 4 warps: BM a multiple of 64 per warpgroup, BN a multiple of 8
    up to 256 (B arrives as whole 64-column boxes), one or two consumer warpgroups; ragged M and N edges
    come from TMA's zero fill. 128x64 on one warpgroup: two 64-row accumulators, each stored at its own
    rows (nvgpu's store of one 128-row accumulator put the second half BN/2 rows down: a race)."""
    rng = np.random.default_rng(bm + bn + warps)
    m, k, n = bm + 72, 320, bn + 64
    a, b = _rand(rng, (m, k), bf16), _rand(rng, (k, n), bf16)
    c = np.zeros((m, n), np.float32)
    ck = ts.compile(matmul, a, b, c, target="sm_90a", BM=bm, BN=bn, BK=64, num_warps=warps, num_stages=3)
    assert f"wgmma.mma_async.sync.aligned.{mma}.f32.bf16.bf16" in ck.asm["ptx"]
    assert ck.metadata["spill_stores"] == 0
    rep = ck.emulate((-(-m // bm), -(-n // bn)), a, b, c, BM=bm, BN=bn, BK=64)
    _check(c, a.astype(np.float32) @ b.astype(np.float32), 1e-3)
    assert not rep.findings


@pytest.mark.parametrize("target", ["sm_80", "sm_90a"])
def test_grouped_program_order_covers_every_tile(target):
    """GEMM grids run in the grouped (L2-friendly) order: 18 x 3 row/column blocks, so the last group of
    8 row blocks is ragged (2); every output tile is still computed exactly once."""
    rng = np.random.default_rng(6)
    m, k, n = 18 * 64 - 5, 128, 3 * 64
    a, b = _rand(rng, (m, k), bf16), _rand(rng, (k, n), bf16)
    c = np.full((m, n), np.nan, np.float32)
    ck = ts.compile(matmul, a, b, c, target=target, BM=64, BN=64, BK=64)
    assert "nctaid.y" in ck.asm["ptx"]          # the remap reads the grid's shape
    ck.emulate((18, 3), a, b, c, BM=64, BN=64, BK=64)
    _check(c, a.astype(np.float32) @ b.astype(np.float32), 1e-4)


@pytest.mark.parametrize("bn,warps,ws", [(128, 4, False), (256, 8, False), (128, 8, True), (256, 12, True),
                                         (64, 4, False), (40, 8, True)])
def test_wgmma_is_not_serialised_by_ptxas(bn, warps, ws):
    """ptxas serialises every wgmma of a kernel (its warning C7515) when non-wgmma instructions define
    accumulator registers between a wgmma and its wait in the code; the zero-trip path's zero accumulator
    did (regression). Also: no division by num_stages in the loop (the slot and its phase are carried)."""
    from tessera.backends.nvidia.ptxas import assemble
    a, b = np.zeros((512, 512), bf16), np.zeros((512, 512), bf16)
    c = np.zeros((512, 512), np.float32)
    ck = ts.compile(matmul, a, b, c, target="sm_90a", BM=128, BN=bn, BK=64, num_warps=warps, warp_specialize=ws)
    assert "wgmma.mma_async" in ck.asm["ptx"]
    _, info = assemble(ck.asm["ptx"], "sm_90a")
    assert "C7515" not in info["ptxas_log"], info["ptxas_log"]
    if not ws:
        assert "mul.hi" not in ck.asm["ptx"]


@pytest.mark.parametrize("bm,bn,warps", [(128, 128, 8), (128, 256, 12), (256, 128, 12)])
def test_warp_specialized_wgmma(bm, bn, warps):
    """warp_specialize=True on sm_90a: the last warpgroup is the TMA producer (its first thread issues every
    load once the consumers released the slot on its empty mbarrier), the others run wgmma; a launch
    option, so it is part of the compiled variant (and of autotuning spaces)."""
    rng = np.random.default_rng(bm + bn + warps)
    m, k, n = 2 * bm - 24, 448, 2 * bn - 40
    a, b = _rand(rng, (m, k), bf16), _rand(rng, (k, n), bf16)
    c = np.zeros((m, n), np.float32)
    ck = ts.compile(matmul, a, b, c, target="sm_90a", BM=bm, BN=bn, BK=64, num_warps=warps, num_stages=3,
                    warp_specialize=True)
    plain = ts.compile(matmul, a, b, c, target="sm_90a", BM=bm, BN=bn, BK=64, num_warps=warps - 4, num_stages=3)
    ptx = ck.asm["ptx"]
    assert "wgmma.mma_async" in ptx and ptx != plain.asm["ptx"]
    assert ck.metadata["num_warps"] == warps
    # the roles never share code (the C store is the consumers'), so each owns its register budget
    assert re.search(r"setmaxnreg\.dec\.sync\.aligned\.u32\s+40;", ptx)
    assert re.search(r"setmaxnreg\.inc\.sync\.aligned\.u32\s+(232|240);", ptx)
    assert re.search(rf"bar(rier)?\.sync(\.aligned)?\s+1, {warps * 32 - 128};", ptx)
    assert ck.metadata["spill_stores"] == 0
    rep = ck.emulate((2, 2), a, b, c, BM=bm, BN=bn, BK=64)
    _check(c, a.astype(np.float32) @ b.astype(np.float32), 1e-3)
    assert not rep.findings


def test_warp_specialize_is_an_autotune_option(monkeypatch, tmp_path):
    """Under TESSERA_BACKEND=emu on sm_90a an autotuning space over warp_specialize compiles and runs both
    variants in the emulator (ranked by warp instructions) and launches the winner."""
    monkeypatch.setenv("TESSERA_BACKEND", "emu")
    monkeypatch.setenv("TESSERA_EMU_ARCH", "sm_90a")
    monkeypatch.setenv("TESSERA_CACHE_DIR", str(tmp_path))

    @ts.kernel.autotune(space=dict(warp_specialize=[False, True], num_warps=[8]), key=["M", "N", "K"])
    def mm(a: tile.Tensor["M", "K", ts.bf16], b: tile.Tensor["K", "N", ts.bf16], c: tile.Tensor["M", "N", ts.f32],
           BM: ts.constexpr = 128, BN: ts.constexpr = 128, BK: ts.constexpr = 64):
        pm, pn = tile.program_id(0), tile.program_id(1)
        acc = tile.zeros([BM, BN], ts.f32)
        for k0 in tile.range(0, a.shape[1], BK):
            acc = tile.mma(tile.load(a[pm * BM:pm * BM + BM, k0:k0 + BK]), tile.load(b[k0:k0 + BK, pn * BN:pn * BN + BN]),
                           acc)
        tile.store(c[pm * BM:pm * BM + BM, pn * BN:pn * BN + BN], acc)

    rng = np.random.default_rng(8)
    a, b = _rand(rng, (128, 192), bf16), _rand(rng, (192, 128), bf16)
    c = np.zeros((128, 128), np.float32)
    mm[(1, 1)](a, b, c)
    _check(c, a.astype(np.float32) @ b.astype(np.float32), 1e-3)
    assert sorted(cfg["warp_specialize"] for cfg, _, status, _ in mm.last_tuning if status == "ok") == [False, True]


@ts.kernel
def matmul_scaled(a: tile.Tensor["M", "K", ts.bf16], b: tile.Tensor["K", "N", ts.bf16], c: tile.Tensor["M", "N", ts.f32],
                  BM: ts.constexpr = 128, BN: ts.constexpr = 128, BK: ts.constexpr = 64):
    pm, pn = tile.program_id(0), tile.program_id(1)
    acc = tile.zeros([BM, BN], ts.f32)
    for k0 in tile.range(0, a.shape[1], BK):
        acc = tile.mma(tile.load(a[pm * BM:pm * BM + BM, k0:k0 + BK]), tile.load(b[k0:k0 + BK, pn * BN:pn * BN + BN]), acc)
    tile.store(c[pm * BM:pm * BM + BM, pn * BN:pn * BN + BN], acc * 0.5 + 1.0)


def test_warp_specialized_wgmma_with_an_epilogue():
    """An elementwise epilogue after the K loop runs on every warp's blocked fragment, so the producer stays
    in the kernel after its loop: warp specialisation without setmaxnreg."""
    rng = np.random.default_rng(9)
    a, b = _rand(rng, (200, 320), bf16), _rand(rng, (320, 256), bf16)
    c = np.zeros((200, 256), np.float32)
    ck = ts.compile(matmul_scaled, a, b, c, target="sm_90a", num_warps=8, warp_specialize=True)
    assert "wgmma.mma_async" in ck.asm["ptx"] and "setmaxnreg" not in ck.asm["ptx"]
    rep = ck.emulate((2, 2), a, b, c)
    _check(c, (a.astype(np.float32) @ b.astype(np.float32)) * 0.5 + 1.0, 1e-3)
    assert not rep.findings
