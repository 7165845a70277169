"""Graph-level GDN components of seed 001, written with @ts.function (NumPy references in
tessera.gdn.reference). Differences from the seed text are noted where a seed name has no
definition: the learnable scale is a parameter, training mode is a Python flag."""
from __future__ import annotations

import math

import numpy as np

import tessera as ts
from tessera import Tensor


@ts.function
def delta_connection(x_source: Tensor["B", "S", "D", ts.bf16], x_target: Tensor["B", "S", "D", ts.bf16],
                     gate_params: Tensor["D", "D", ts.bf16], layer_distance: int):
    """Gated delta contribution: delta · gating_function(delta, W, d), delta = target − source."""
    delta = ts.subtract(x_target, x_source)
    gate_weights = ts.ops.gating_function(delta, gate_params, layer_distance)
    return ts.multiply(delta, gate_weights)


@ts.function
def gating_function(delta: Tensor["B", "S", "D", ts.bf16], gate_params: Tensor["D", "D", ts.bf16],
                    layer_distance: int):
    """sigmoid(distance_scale(d) · (delta @ W)) (the function form of gating_function_kernel)."""
    return ts.ops.gating_function(delta, gate_params, layer_distance)


def distance_scaling_function(layer_distance) -> float:
    """exp(−0.1 · d): closer layers get higher weights (a Python value: it folds into the graph)."""
    base_weight = 1.0
    decay_rate = 0.1
    return base_weight * math.exp(-decay_rate * layer_distance)


@ts.function
def multi_scale_delta_aggregation(source_layers: list, target_layer: Tensor["B", "S", "D", ts.bf16],
                                  gate_networks: list, attention_weights: Tensor["L", "L", ts.bf16]):
    """Σ_i A[i, −1] · delta_connection(s_i, t, W_i, L − i): fused into one kernel by
    tessera-fuse-delta-connections; with bound weights, small ones are pruned."""
    aggregated_delta = ts.zeros_like(target_layer)
    for i, (source_layer, gate_net) in enumerate(zip(source_layers, gate_networks)):
        layer_distance = len(source_layers) - i
        delta_contrib = delta_connection(source_layer, target_layer, gate_net, layer_distance)
        attention_weight = attention_weights[i, -1]
        weighted_delta = ts.multiply(delta_contrib, attention_weight)
        aggregated_delta = ts.add(aggregated_delta, weighted_delta)
    return aggregated_delta


@ts.function
def safe_delta_computation(x_source: Tensor["B", "S", "D", ts.bf16], x_target: Tensor["B", "S", "D", ts.bf16],
                           scale_factor: Tensor["D", ts.f32], epsilon: float = 1e-8):
    """Delta normalised by its (clamped) L2 norm, times a learned per-feature scale (the seed's
    `ts.ops.learnable_scale_parameter()` is this parameter)."""
    delta = ts.subtract(x_target, x_source, precision="high")
    delta_norm = ts.ops.l2_norm(delta, axis=-1, keepdims=True)
    safe_norm = ts.maximum(delta_norm, epsilon)
    normalized_delta = ts.divide(delta, safe_norm)
    return ts.multiply(normalized_delta, scale_factor)


@ts.function
def stable_gating_computation(gating_input: Tensor["B", "S", "G", ts.bf16], temperature: float = 1.0,
                              gating_dropout: float = 0.1, training: bool = False, seed: int = 0):
    """Temperature-scaled stable softmax over the gate dimension; in training mode, dropout seeded by
    `seed` (the seed's `ts.is_training()` is the `training` flag)."""
    scaled_logits = ts.divide(gating_input, temperature)
    gate_probs = ts.ops.softmax_safe(scaled_logits)
    if training:
        gate_probs = ts.ops.dropout(gate_probs, p=gating_dropout, seed=seed)
    return gate_probs


@ts.function
def mixed_precision_gdn_layer(x: Tensor["B", "S", "D", ts.fp8_e4m3], previous_layers: list, gate_params: list):
    """Seed 001: fp8 (E4M3) storage for activations and weights, bf16 deltas, f32 gating and
    accumulation; `ts.ops.gating_network(x, W)` is sigmoid(x @ W)."""
    delta_contributions = []
    for prev_layer, gate_param in zip(previous_layers, gate_params):
        prev_bf16 = ts.cast(prev_layer, ts.bf16)
        x_bf16 = ts.cast(x, ts.bf16)
        delta = ts.subtract(x_bf16, prev_bf16)
        gate_input_f32 = ts.cast(delta, ts.f32)
        gate_weights_f32 = ts.cast(gate_param, ts.f32)
        gate_output = ts.ops.gating_network(gate_input_f32, gate_weights_f32)
        gated_delta_f32 = ts.multiply(gate_input_f32, gate_output)
        gated_delta = ts.cast(gated_delta_f32, ts.fp8_e4m3)
        delta_contributions.append(gated_delta)
    total_delta_f32 = ts.sum([ts.cast(d, ts.f32) for d in delta_contributions], axis=0)
    total_delta = ts.cast(total_delta_f32, ts.fp8_e4m3)
    return ts.add(x, total_delta)


@ts.function
def attention_based_delta_selection(layer_activations: list, query_layer: Tensor["B", "S", "D", ts.bf16],
                                    attention_params: Tensor["D", "A", ts.bf16]):
    """Seed 000: attention over candidate source layers; returns the attention-weighted deltas
    [B, S(query), S(key), D] and the weights [B, S, S, L]. One change to the seed text: the delta gets
    a query axis (`ts.expand_dims(delta, 1)`), since [B, S, D] · [B, S, S, 1] does not broadcast."""
    attention_scores = []
    for layer_act in layer_activations:
        query_proj = ts.gemm(query_layer, attention_params)
        key_proj = ts.gemm(layer_act, attention_params)
        scores = ts.gemm(query_proj, ts.transpose(key_proj, -1, -2))
        scores = ts.divide(scores, ts.sqrt(float(attention_params.shape[-1])))
        attention_scores.append(scores)
    all_scores = ts.stack(attention_scores, axis=-1)  # [B, S, S, L]
    attention_weights = ts.ops.softmax(all_scores, axis=-1)
    weighted_deltas = []
    for i, layer_act in enumerate(layer_activations):
        layer_attention = attention_weights[..., i]  # [B, S, S]
        delta = ts.subtract(query_layer, layer_act)
        layer_attention_expanded = ts.expand_dims(layer_attention, -1)
        weighted_deltas.append(ts.multiply(ts.expand_dims(delta, 1), layer_attention_expanded))
    return (*weighted_deltas, attention_weights)


@ts.function
def global_l2_norm(x):
    """‖x‖₂ over every element, as a 1-element tensor (the seeds' ts.ops.l2_norm(t) without an axis)."""
    return ts.ops.l2_norm(ts.reshape(x, (1, -1)), axis=-1)


def dynamic_delta_pruning(delta_contributions, gate_weights, pruning_threshold=0.01, training_step=0):
    """Seed 000: keep a delta contribution when ‖delta‖₂·‖gate‖₂ exceeds a threshold that grows with
    training progress. The decision is data-dependent Python control flow, so this runs eagerly: the
    norms are compiled graphs, the comparison happens on the host (one read-back per connection)."""
    adaptive_threshold = pruning_threshold * (1.0 + 0.1 * training_step / 10000)
    pruned_deltas, active_mask = [], []
    for delta_contrib, gate_weight in zip(delta_contributions, gate_weights):
        delta_magnitude = float(_host(global_l2_norm(delta_contrib))[0])
        gate_importance = float(_host(global_l2_norm(gate_weight))[0])
        keep = delta_magnitude * gate_importance > adaptive_threshold
        pruned_deltas.append(delta_contrib if keep else _zeros_like(delta_contrib))
        active_mask.append(keep)
    return pruned_deltas, active_mask


def _host(a):
    return a if isinstance(a, np.ndarray) else __import__("cupy").asnumpy(a)


def _zeros_like(a):
    return np.zeros_like(a) if isinstance(a, np.ndarray) else __import__("cupy").zeros_like(a)


@ts.function
def adaptive_gating_mechanism(delta: Tensor["B", "S", "D", ts.bf16], context_vector: Tensor["B", "S", "D", ts.bf16],
                              gate_weights: Tensor["D", "G", ts.bf16], layer_distance: int, temperature: float = 1.0):
    """Seed 001, verbatim; `ts.ops.mlp_gating` (undefined in the seeds) is read as
    context_projection @ Wᵀ + ‖delta‖ so that the gates have the delta's shape."""
    distance_weight = distance_scaling_function(layer_distance)
    context_projection = ts.gemm(context_vector, gate_weights)
    delta_magnitude = ts.ops.l2_norm(delta, axis=-1, keepdims=True)
    gating_input = ts.concatenate([delta_magnitude, context_projection], axis=-1)
    gate_logits = ts.ops.mlp_gating(gating_input, gate_weights)
    gate_probs = ts.ops.softmax_safe(gate_logits / temperature)
    final_gates = ts.multiply(gate_probs, distance_weight)
    return ts.multiply(delta, final_gates)
