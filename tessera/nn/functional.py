"""The functional building blocks of `ts.nn` layers and of tessera.gdn.model (one definition serves both):
@ts.function graphs, inlined where they are called from another graph."""
from __future__ import annotations

import math

import tessera as ts


@ts.function
def rms_norm(x, weight, eps: float):
    ms = ts.mean(x * x, axis=-1, keepdims=True)
    return x / ts.sqrt(ms + eps) * weight


@ts.function
def linear(x, w, b=None):
    """x @ w (+ b): `w` is [in, out] (the layout a gemm reads without a transpose)."""
    y = ts.gemm(x, w)
    return y if b is None else y + b


@ts.function
def silu(x):
    return x * ts.sigmoid(x)


@ts.function
def multi_head_attention(query, key, value, wq, wk, wv, wo, bias, heads: int):
    """Scaled dot-product attention over `heads` heads: query [B, Sq, D], key / value [B, Sk, D]; `bias` is
    added to the [B, H, Sq, Sk] scores (a causal or padding mask as 0 / -1e9), or None."""
    B, Sq, D = query.shape
    Sk = key.shape[1]
    dh = D // heads

    def split(t, S):
        return ts.transpose(ts.reshape(t, (B, S, heads, dh)), [0, 2, 1, 3])   # [B, H, S, dh]

    q, k, v = split(linear(query, wq), Sq), split(linear(key, wk), Sk), split(linear(value, wv), Sk)
    scores = ts.gemm(q, ts.transpose(k, [0, 1, 3, 2])) * (1.0 / math.sqrt(dh))
    if bias is not None:
        scores = scores + bias
    probs = ts.ops.softmax(scores)
    ctx = ts.transpose(ts.gemm(probs, v), [0, 2, 1, 3])                       # [B, Sq, H, dh]
    return linear(ts.reshape(ctx, (B, Sq, D)), wo)


@ts.function
def attention(x, wq, wk, wv, wo, mask, heads: int):
    """Self-attention of x [B, S, D] with an additive score mask."""
    return multi_head_attention(x, x, x, wq, wk, wv, wo, mask, heads)


def causal_bias(S):
    """The [S, S] additive causal mask (0 on and below the diagonal, -1e9 above) as a graph constant."""
    import numpy as np
    return ts.graph_constant(np.triu(np.full((S, S), -1e9, np.float32), 1))


def padding_bias(attention_mask, dtype=ts.f32):
    """The [B, 1, 1, S] additive key bias of a [B, S] 0/1 padding mask (any dtype), in the graph: 0 where the
    mask is 1, -1e9 where it is 0."""
    B, S = attention_mask.shape
    keep = ts.cast(attention_mask, dtype)
    return ts.reshape((keep - 1.0) * 1e9, (B, 1, 1, S))
