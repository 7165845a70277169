"""Seed 001 `gating_function_kernel`: gate = sigmoid(exp(-0.1·d) · (delta @ W)), out = delta · gate."""
from __future__ import annotations

import numpy as np

import tessera as ts
from tessera import tile


@ts.kernel
def gating_function_kernel(
    delta: tile.Tensor["B", "S", "D", ts.bf16],
    gate_params: tile.Tensor["D", "D", ts.bf16],
    layer_distance: int,
    output: tile.Tensor["B", "S", "D", ts.bf16],
    BLOCK_SIZE: ts.constexpr = 128,
):
    """Optimized tile-level gating computation (one program per (batch, sequence block))."""
    ctx = tile.context()
    batch_idx = tile.program_id(0)
    seq_idx = tile.program_id(1) * BLOCK_SIZE

    smem_delta = tile.alloc_shared([BLOCK_SIZE, ctx.D], ts.bf16)
    smem_params = tile.alloc_shared([ctx.D, ctx.D], ts.bf16)
    tile.cp_async.shared.global_(smem_delta, delta[batch_idx, seq_idx:seq_idx + BLOCK_SIZE], bypass_l1=True)
    tile.cp_async.shared.global_(smem_params, gate_params, bypass_l1=True)
    tile.cp_commit_group()
    tile.cp_wait_group(0)
    tile.barrier()

    distance_scale = ts.ops.distance_scaling(layer_distance)
    gate_weights = tile.mma(smem_delta, smem_params, accumulator_type=ts.f32, precision_policy="mixed_bf16_f32")
    gate_weights = tile.multiply(gate_weights, distance_scale)
    gate_weights = ts.ops.sigmoid_safe(gate_weights)
    gated_result = tile.multiply(smem_delta, gate_weights)
    tile.store_global(gated_result, output[batch_idx, seq_idx:seq_idx + BLOCK_SIZE], coalesce=True)


def gating_function_reference(delta, gate_params, layer_distance):
    """NumPy reference (f32 math on the bf16 inputs)."""
    x = np.asarray(delta).astype(np.float32)
    w = np.asarray(gate_params).astype(np.float32)
    g = 1.0 / (1.0 + np.exp(-(np.exp(-0.1 * layer_distance) * (x @ w))))
    return x * g
