"""NumPy references of the GDN components (DESIGN §8): f32 math on the stored dtypes, with the
bf16 rounding of the delta that the compiled graphs also have."""
from __future__ import annotations

import numpy as np


def _f32(x):
    return np.asarray(x).astype(np.float32)


def _bf16_round(x):
    import ml_dtypes
    return np.asarray(x, np.float32).astype(ml_dtypes.bfloat16).astype(np.float32)


def distance_scaling(d):
    return float(np.exp(-0.1 * d))


def gating_function(delta, w, d):
    return 1.0 / (1.0 + np.exp(-(distance_scaling(d) * (_f32(delta) @ _f32(w)))))


def delta_connection(src, tgt, w, d, round_delta=True):
    delta = _f32(tgt) - _f32(src)
    if round_delta and np.asarray(tgt).dtype.name == "bfloat16":
        delta = _bf16_round(delta)
    return delta * gating_function(delta, w, d)


def multi_scale_delta_aggregation(srcs, tgt, ws, a, threshold=0.0):
    L = len(srcs)
    acc = np.zeros(np.shape(tgt), np.float32)
    for i in range(L):
        c = float(_f32(a)[i, -1])
        if abs(c) >= threshold:
            acc += c * delta_connection(srcs[i], tgt, ws[i], L - i)
    return acc


def safe_delta_computation(src, tgt, scale, epsilon=1e-8):
    delta = _f32(tgt) - _f32(src)
    norm = np.sqrt((delta * delta).sum(-1, keepdims=True))
    return delta / np.maximum(norm, epsilon) * _f32(scale)


def stable_gating_computation(x, temperature=1.0, gating_dropout=0.1, training=False, seed=0):
    z = _f32(x) / temperature
    if np.asarray(x).dtype.name == "bfloat16":   # ts.divide(bf16, float): NumPy's rules (NEP 50), as in the
        z = _bf16_round(_f32(x) / _bf16_round(np.float32(temperature)))   # seed: bf16(x / bf16(T))
    e = np.exp(z - z.max(-1, keepdims=True))
    p = e / e.sum(-1, keepdims=True)
    return dropout(p, gating_dropout, seed) if training else p


def dropout_mask(shape, p, seed=0):
    """The keep mask of ts.ops.dropout: murmur3 finaliser of (flat index, seed) in wrapping i32."""
    with np.errstate(over="ignore"):
        e = np.arange(int(np.prod(shape)), dtype=np.int32)
        h = (e * np.int32(-1640531535) + np.int32(seed)).astype(np.int32)
        h = h ^ ((h >> 16) & 65535)
        h = (h * np.int32(-2048144789)).astype(np.int32)
        h = h ^ ((h >> 13) & 524287)
        h = (h * np.int32(-1028477387)).astype(np.int32)
        h = h ^ ((h >> 16) & 65535)
    u = (h & 16777215).astype(np.float32) * np.float32(1.0 / 16777216.0)
    return (u >= p).reshape(shape)


def dropout(x, p, seed=0):
    x = _f32(x)
    return np.where(dropout_mask(x.shape, p, seed), x * np.float32(1.0 / (1.0 - p)), 0.0).astype(np.float32)


def fused_delta_gating(srcs, tgt, ws, coeffs, distances=None, residual=False):
    L = len(srcs)
    distances = distances if distances is not None else [L - i for i in range(L)]
    acc = sum(float(c) * delta_connection(s, tgt, w, d) for s, w, c, d in zip(srcs, ws, np.ravel(coeffs), distances))
    return acc + (_f32(tgt) if residual else 0.0)


def sparse_delta_computation(srcs, tgt, ws, active_mask):
    return fused_delta_gating(srcs, tgt, ws, np.asarray(active_mask, np.float32))


def mixed_precision_gdn_layer(x, previous_layers, gate_params):
    import ml_dtypes
    f8, b16 = ml_dtypes.float8_e4m3fn, ml_dtypes.bfloat16
    contributions = []
    for prev, w in zip(previous_layers, gate_params):
        delta = (np.asarray(x).astype(b16).astype(np.float32) - np.asarray(prev).astype(b16).astype(np.float32))
        delta = delta.astype(b16).astype(np.float32)
        gate = 1.0 / (1.0 + np.exp(-(delta @ _f32(w))))
        contributions.append((delta * gate).astype(f8).astype(np.float32))
    total = np.sum(contributions, axis=0).astype(f8).astype(np.float32)
    return (_f32(x) + total).astype(f8)


def attention_based_delta_selection(layers, query, params):
    q = _f32(query) @ _f32(params)
    scores = [q @ (_f32(a) @ _f32(params)).swapaxes(-1, -2) / np.sqrt(float(np.shape(params)[-1])) for a in layers]
    s = np.stack(scores, -1)
    e = np.exp(s - s.max(-1, keepdims=True))
    w = e / e.sum(-1, keepdims=True)
    deltas = []
    for i, a in enumerate(layers):
        d = _f32(query) - _f32(a)
        if np.asarray(query).dtype.name == "bfloat16":
            d = _bf16_round(d)
        deltas.append(d[:, None] * w[..., i][..., None])
    return (*deltas, w)


def dynamic_delta_pruning(deltas, gates, pruning_threshold=0.01, training_step=0):
    thr = pruning_threshold * (1.0 + 0.1 * training_step / 10000)
    mask = [float(np.linalg.norm(_f32(d))) * float(np.linalg.norm(_f32(g))) > thr for d, g in zip(deltas, gates)]
    return [d if m else np.zeros_like(d) for d, m in zip(deltas, mask)], mask


def adaptive_gdn_with_early_exit(x, layer_stack, confidence_threshold=0.95, max_layers=None):
    max_layers = max_layers or len(layer_stack)
    current, outputs, probs = _f32(x), [_f32(x)], []
    for li in range(max_layers):
        layer = layer_stack[li]
        earlier = outputs[:-1] if li > 0 else []
        enhanced = current
        if earlier:
            n = len(earlier)
            enhanced = current + np.sum([delta_connection(earlier[i], current, layer.gate_params[i], n - i,
                                                          round_delta=False) for i in range(n)], axis=0)
        h = enhanced @ _f32(layer.weight)
        out = enhanced + h / (1 + np.exp(-h))
        outputs.append(out)
        p = (1 / (1 + np.exp(-(out @ _f32(layer.confidence)))))[..., 0]
        probs.append(p)
        if p.mean() > confidence_threshold and li >= 2:
            probs += [np.ones_like(p)] * (max_layers - li - 1)
            break
        current = out
    return outputs[-1], np.stack(probs, axis=1)


def compressed_delta_reconstruction(delta, compression_ratio=0.1):
    """The rank-k truncated SVD reconstruction of a [B, S, D] delta, and the k singular values."""
    B, S, D = np.shape(delta)
    k = max(1, int(D * compression_ratio))
    u, s, vt = np.linalg.svd(_f32(delta).reshape(-1, D), full_matrices=False)
    return ((u[:, :k] * s[:k]) @ vt[:k]).reshape(B, S, D), s[:k]


def adaptive_gating_mechanism(delta, context, w, d, temperature=1.0):
    proj = _f32(context) @ _f32(w)
    mag = np.sqrt((_f32(delta) ** 2).sum(-1, keepdims=True))
    logits = (proj @ _f32(w).T + mag) / temperature
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return _f32(delta) * (e / e.sum(-1, keepdims=True)) * distance_scaling(d)
