"""sm_90a `tile.mma` on tiles in registers (outside a pipelined K loop) on wgmma
(backends/nvidia/wgmma_tile.py): operands stored 128-byte swizzled, `fence.proxy.async`, one wgmma chain
per 64-row accumulator, the result back in the blocked layout. Checked in the PTX emulator with its checks
on, which also catch a missing proxy fence; the GDN fused kernel's gating GEMMs take this path when the
graph plan launches it on sm_90a (64-row blocks)."""
import re

import ml_dtypes
import numpy as np
import pytest

import tessera as ts
from tessera import tile
from test_nvidia_compile import _have_ptxas

bf16 = ml_dtypes.bfloat16
pytestmark = pytest.mark.skipif(not _have_ptxas(), reason="ptxas not found (the NVIDIA stages need it)")


@ts.kernel
def scaled_mma(a: tile.Tensor["M", "K", ts.bf16], b: tile.Tensor["K", "N", ts.bf16], c: tile.Tensor["M", "N", ts.f32],
               BM: ts.constexpr = 64, BN: ts.constexpr = 64, BK: ts.constexpr = 64):
    pm = tile.program_id(0)
    x = tile.load(a[pm * BM:pm * BM + BM, 0:BK]) * 2.0
    w = tile.load(b[0:BK, 0:BN])
    tile.store(c[pm * BM:pm * BM + BM, 0:BN], tile.mma(x, w) + 1.0)


def _run(bm, bn, bk, warps, ptx_edit=None):
    rng = np.random.default_rng(bm + bn + bk + warps)
    m = 2 * bm - 8
    a, b = rng.standard_normal((m, bk)).astype(bf16), rng.standard_normal((bk, bn)).astype(bf16)
    c = np.zeros((m, bn), np.float32)
    ck = ts.compile(scaled_mma, a, b, c, target="sm_90a", num_warps=warps, BM=bm, BN=bn, BK=bk)
    ptx = ck.asm["ptx"] if ptx_edit is None else ptx_edit(ck.asm["ptx"])
    rep = ck.emulate((2,), a, b, c, BM=bm, BN=bn, BK=bk, ptx=ptx)
    want = (a.astype(np.float32) * 2).astype(bf16).astype(np.float32) @ b.astype(np.float32) + 1
    return ck, rep, c, want


@pytest.mark.parametrize("bm,bn,bk,warps", [(64, 64, 64, 4), (64, 24, 128, 4), (128, 64, 64, 4), (128, 40, 128, 8),
                                            (256, 64, 64, 8)])
def test_register_operands_on_wgmma(bm, bn, bk, warps):
    ck, rep, got, want = _run(bm, bn, bk, warps)
    ptx = ck.asm["ptx"]
    assert f"wgmma.mma_async.sync.aligned.m64n{bn}k16.f32.bf16.bf16" in ptx and "mma.sync" not in ptx
    assert "fence.proxy.async.shared::cta" in ptx and ck.metadata["spill_stores"] == 0
    # one wgmma per 16 of K, per 64-row accumulator of a warpgroup
    assert ptx.count("wgmma.mma_async") == (bk // 16) * (bm // (warps // 4) // 64)
    assert not rep.findings
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_missing_proxy_fence_is_caught():
    """Generic-proxy stores read by wgmma (the async proxy) need fence.proxy.async: without it the
    emulator reports a cross-proxy race."""
    with pytest.raises(ts.SanitizerError) as e:
        _run(64, 64, 64, 4, lambda p: re.sub(r"\n\s*fence\.proxy\.async[^\n]*", "", p))
    assert e.value.kind == "shared-race" and "fence.proxy.async" in str(e.value)


def test_other_shapes_keep_mma_sync():
    """32 rows (less than a warpgroup's 64) stay on mma.sync."""
    ck, rep, got, want = _run(32, 64, 64, 4)
    assert "wgmma" not in ck.asm["ptx"] and "mma.sync" in ck.asm["ptx"]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_gdn_graph_plan_runs_gating_on_wgmma_on_sm90a():
    """The graph plan's fused delta-gating step uses 64-row blocks on sm_90a (wgmma), 32 elsewhere."""
    from tessera.gdn.generated import fused_delta_gating
    from tessera.graph.plan import Step
    k = fused_delta_gating(2, False, False, "tensor")
    st = Step(k, lambda c: (-(-1000 // c["BLOCK_R"]),), [], {"BLOCK_R": 32}, [], "fused",
              by_target={"sm_90a": {"BLOCK_R": 64}})
    assert st.launch_config("sm_90a") == ((16,), {"BLOCK_R": 64}) and st.launch_config("sm_80") == ((32,), {"BLOCK_R": 32})

    from test_graph import multi_scale_delta_aggregation
    D = 64
    srcs = [np.zeros((2, 40, D), bf16) for _ in range(3)]
    ws = [np.zeros((D, D), bf16) for _ in range(3)]
    ck = ts.compile(multi_scale_delta_aggregation, srcs, np.zeros((2, 40, D), bf16), ws, np.zeros((4, 4), bf16),
                    target="sm_90a")
    fused = [kk for kk in ck.kernels if kk.name.startswith("fused_delta_gating")]
    assert len(fused) == 1 and fused[0].metadata["constexprs"]["BLOCK_R"] == 64
    assert fused[0].asm["ptx"].count("wgmma.mma_async.sync.aligned.m64n64k16") == 3 * (D // 16)
