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


def stable_gating_computation(x, temperature=1.0):
    z = _f32(x) / temperature
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)
