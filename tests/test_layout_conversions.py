"""tessera-place-layout-conversions end to end: an mma.sync result that reaches only stores through
elementwise ops is stored from its accumulator registers (no shared-memory exchange); one that also
needs the blocked layout gets one tile.convert_layout. Run in the PTX emulator on sm_80 and sm_90a
(mma.sync where wgmma does not apply) with checks on."""
import ml_dtypes
import numpy as np
import pytest

import tessera as ts
from tessera import tile
from test_nvidia_compile import _have_ptxas

bf16 = ml_dtypes.bfloat16
pytestmark = pytest.mark.skipif(not _have_ptxas(), reason="ptxas not found (the NVIDIA stages need it)")


@ts.kernel
def gemm_bias_relu(a: tile.Tensor["M", "K", ts.bf16], b: tile.Tensor["K", "N", ts.bf16],
                   c: tile.Tensor["M", "N", ts.bf16], alpha: float,
                   BM: ts.constexpr = 64, BN: ts.constexpr = 64, BK: ts.constexpr = 32):
    pm, pn = tile.program_id(0), tile.program_id(1)
    acc = tile.zeros([BM, BN], ts.f32)
    for k0 in tile.range(0, a.shape[1], BK):
        acc = tile.mma(tile.load(a[pm * BM:pm * BM + BM, k0:k0 + BK]), tile.load(b[k0:k0 + BK, pn * BN:pn * BN + BN]), acc)
    tile.store(c[pm * BM:pm * BM + BM, pn * BN:pn * BN + BN], tile.cast(tile.maximum(acc * alpha + 0.5, 0.0), ts.bf16))


@ts.kernel
def product_and_row_sums(x: tile.Tensor["M", "K", ts.bf16], w: tile.Tensor["K", "N", ts.bf16],
                         p: tile.Tensor["M", "N", ts.f32], s: tile.Tensor["M", ts.f32], BM: ts.constexpr = 64):
    pm = tile.program_id(0)
    prod = tile.mma(tile.load(x[pm * BM:pm * BM + BM]) * 2.0, tile.load(w))
    tile.store(p[pm * BM:pm * BM + BM], prod)
    tile.store(s[pm * BM:pm * BM + BM], tile.sum(prod, axis=1))


@pytest.mark.parametrize("target", ["sm_80", "sm_90a"])
def test_epilogue_stays_in_registers(target):
    rng = np.random.default_rng(11)
    m, n, k = 136, 200, 96
    a, b = rng.standard_normal((m, k)).astype(bf16), rng.standard_normal((k, n)).astype(bf16)
    c = np.zeros((m, n), bf16)
    ck = ts.compile(gemm_bias_relu, a, b, c, 0.5, target=target, num_warps=4)
    ptx = ck.asm["ptx"]
    assert "mma.sync" in ptx and "wgmma" not in ptx
    # operands arrive by cp.async and ldmatrix: any st/ld.shared would be an exchange of the result
    assert "st.shared" not in ptx and "ld.shared" not in ptx, "the epilogue went through shared memory"
    assert ptx.count("st.global.b32") == 16   # two bf16 per store from the registers: 64 values per thread
    rep = ck.emulate((-(-m // 64), -(-n // 64)), a, b, c, 0.5)
    assert not rep.findings
    want = np.maximum(a.astype(np.float32) @ b.astype(np.float32) * 0.5 + 0.5, 0).astype(bf16).astype(np.float32)
    np.testing.assert_allclose(c.astype(np.float32), want, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("target", ["sm_80", "sm_90a"])
def test_one_conversion_serves_store_and_reduction(target):
    rng = np.random.default_rng(12)
    m, k, n = 100, 32, 64
    x, w = rng.standard_normal((m, k)).astype(bf16), rng.standard_normal((k, n)).astype(bf16)
    p, s = np.zeros((m, n), np.float32), np.zeros(m, np.float32)
    ck = ts.compile(product_and_row_sums, x, w, p, s, target=target, num_warps=4)
    assert ck.asm["tile"].count("tile.mma") == 1
    assert "st.shared.v2.b32" in ck.asm["ptx"]   # the one exchange of the accumulators into the blocked layout
    rep = ck.emulate((2,), x, w, p, s)
    assert not rep.findings
    want = (x.astype(np.float32) * 2).astype(bf16).astype(np.float32) @ w.astype(np.float32)
    np.testing.assert_allclose(p, want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(s, want.sum(axis=1), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("target", ["sm_80", "sm_90a"])
def test_gdn_exchange_is_bank_conflict_free(target):
    """The GDN fused kernel (32-row blocks, mma.sync gating): its accumulator → blocked exchanges store
    chunks swizzled so a quarter-warp's 16-byte reads of 8-f32 runs hit 8 bank groups (it had 1,024
    conflicts per launch); the result still matches the CPU backend."""
    import emu_cases
    k, make, ce = emu_cases._fused(4, False, False)
    args = make(np.random.default_rng(4))
    cpu = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    ck = ts.compile(k, *args, target=target, **ce)
    rep = ck.emulate((4,), *args, **ce)
    assert not rep.findings and rep.shared_requests > 0 and rep.shared_bank_conflicts == 0
    k[(4,)](*cpu, **ce)
    np.testing.assert_allclose(args[-1], cpu[-1], rtol=1e-5, atol=1e-5)
