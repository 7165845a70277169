"""Acceptance kernels: tiled bf16 matmul with a K loop and ragged M/N/K, and the seed-001
`gating_function_kernel` with its shared-memory path, on the CPU backend against NumPy."""
import ml_dtypes
import numpy as np
import pytest

import tessera as ts
from tessera import tile

bf16 = ml_dtypes.bfloat16


@ts.kernel
def matmul(a: tile.Tensor["M", "K", ts.bf16], b: tile.Tensor["K", "N", ts.bf16], c: tile.Tensor["M", "N", ts.f32],
           BM: ts.constexpr = 32, BN: ts.constexpr = 32, BK: ts.constexpr = 16):
    pm = tile.program_id(0)
    pn = tile.program_id(1)
    acc = tile.zeros([BM, BN], ts.f32)
    for k0 in tile.range(0, a.shape[1], BK):
        at = tile.load(a[pm * BM:pm * BM + BM, k0:k0 + BK])
        bt = tile.load(b[k0:k0 + BK, pn * BN:pn * BN + BN])
        acc = tile.mma(at, bt, acc)
    tile.store(c[pm * BM:pm * BM + BM, pn * BN:pn * BN + BN], acc)


@pytest.mark.parametrize("m,n,k", [(70, 45, 37), (32, 32, 16), (1, 100, 3), (65, 33, 129)])
def test_tiled_bf16_matmul_ragged(rng, m, n, k):
    a = rng.standard_normal((m, k)).astype(bf16)
    b = rng.standard_normal((k, n)).astype(bf16)
    c = np.zeros((m, n), np.float32)
    matmul[(-(-m // 32), -(-n // 32))](a, b, c)
    ref = a.astype(np.float32) @ b.astype(np.float32)
    np.testing.assert_allclose(c, ref, rtol=1e-4, atol=1e-4)


@ts.kernel
def matmul_smem(a: tile.Tensor["M", "K", ts.f16], b: tile.Tensor["K", "N", ts.f16], c: tile.Tensor["M", "N", ts.f16],
                BM: ts.constexpr = 16, BN: ts.constexpr = 16, BK: ts.constexpr = 8):
    m0 = tile.program_id(0) * BM
    n0 = tile.program_id(1) * BN
    sa = tile.alloc_shared([BM, BK], ts.f16)
    sb = tile.alloc_shared([BK, BN], ts.f16)
    acc = tile.zeros([BM, BN], ts.f32)
    for k0 in range(0, a.shape[1], BK):
        tile.cp_async(sa, a[m0:m0 + BM, k0:k0 + BK])
        tile.cp_async(sb, b[k0:k0 + BK, n0:n0 + BN])
        tile.cp_commit_group()
        tile.cp_wait_group(0)
        tile.barrier()
        acc = tile.mma(sa, sb, acc)
        tile.barrier()
    tile.store(c[m0:m0 + BM, n0:n0 + BN], acc)


def test_f16_matmul_through_shared_memory(rng):
    m, n, k = 40, 20, 30
    a = rng.standard_normal((m, k)).astype(np.float16)
    b = rng.standard_normal((k, n)).astype(np.float16)
    c = np.zeros((m, n), np.float16)
    matmul_smem[(3, 2)](a, b, c)
    ref = (a.astype(np.float32) @ b.astype(np.float32)).astype(np.float16)
    np.testing.assert_allclose(c.astype(np.float32), ref.astype(np.float32), rtol=2e-3, atol=2e-3)


@ts.kernel
def gating_function_kernel(
    delta: tile.Tensor["B", "S", "D", ts.bf16],
    gate_params: tile.Tensor["D", "D", ts.bf16],
    layer_distance: int,
    output: tile.Tensor["B", "S", "D", ts.bf16]
):
    """Seed 001, verbatim except `.global_` for the keyword `.global`."""
    ctx = tile.context()

    # Thread and block identification
    batch_idx = tile.program_id(0)
    seq_idx = tile.program_id(1)

    # Load delta values into shared memory
    BLOCK_SIZE = 128
    smem_delta = tile.alloc_shared([BLOCK_SIZE, ctx.D], ts.bf16)
    smem_params = tile.alloc_shared([ctx.D, ctx.D], ts.bf16)

    # Async copy delta block
    tile.cp_async.shared.global_(
        smem_delta,
        delta[batch_idx, seq_idx:seq_idx+BLOCK_SIZE],
        bypass_l1=True
    )

    # Load gating parameters
    tile.cp_async.shared.global_(
        smem_params,
        gate_params,
        bypass_l1=True
    )

    tile.cp_commit_group()
    tile.cp_wait_group(0)
    tile.barrier()

    # Compute gating weights with distance-aware scaling
    distance_scale = ts.ops.distance_scaling(layer_distance)

    # Matrix multiplication for gating transformation
    gate_weights = tile.mma(
        smem_delta,
        smem_params,
        accumulator_type=ts.f32,
        precision_policy="mixed_bf16_f32"
    )

    # Apply distance scaling and activation
    gate_weights = tile.multiply(gate_weights, distance_scale)
    gate_weights = ts.ops.sigmoid_safe(gate_weights)

    # Apply gating to delta
    gated_result = tile.multiply(smem_delta, gate_weights)

    # Store result
    tile.store_global(
        gated_result,
        output[batch_idx, seq_idx:seq_idx+BLOCK_SIZE],
        coalesce=True
    )


def gating_reference(delta, w, d):
    x = delta.astype(np.float32)
    g = 1 / (1 + np.exp(-(np.exp(-0.1 * d) * (x @ w.astype(np.float32)))))
    return x * g


@pytest.mark.parametrize("b,s,d,dist", [(2, 50, 32, 3), (1, 128, 16, 1), (3, 7, 8, 5)])
def test_seed_gating_function_kernel(rng, b, s, d, dist):
    delta = rng.standard_normal((b, s, d)).astype(bf16)
    w = (rng.standard_normal((d, d)) * 0.2).astype(bf16)
    out = np.zeros((b, s, d), bf16)
    gating_function_kernel[(b, 1)](delta, w, dist, out)
    ref = gating_reference(delta, w, dist)
    np.testing.assert_allclose(out.astype(np.float32), ref, rtol=1e-2, atol=1e-2)


def test_gating_kernel_specialises_on_D_only(rng):
    """`ctx.D` sizes shared buffers, so D is specialised; B and S stay runtime."""
    w = (rng.standard_normal((16, 16)) * 0.2).astype(bf16)
    for b, s in [(1, 10), (2, 33)]:
        delta = rng.standard_normal((b, s, 16)).astype(bf16)
        out = np.zeros_like(delta)
        ck = gating_function_kernel[(b, 1)](delta, w, 2, out)
        np.testing.assert_allclose(out.astype(np.float32), gating_reference(delta, w, 2), rtol=1e-2, atol=1e-2)
    assert ck.metadata["spec_dims"] == ["D"]
