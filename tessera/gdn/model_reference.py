"""NumPy reference of tessera.gdn.model (f32)."""
from __future__ import annotations

import math

import numpy as np

from .model import param_names


def _rms(x, w, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def _silu(x):
    return x / (1 + np.exp(-x))


def _attention(x, wq, wk, wv, wo, heads):
    B, S, D = x.shape
    dh = D // heads

    def split(t):
        return t.reshape(B, S, heads, dh).transpose(0, 2, 1, 3)
    q, k, v = split(x @ wq), split(x @ wk), split(x @ wv)
    s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(dh) + np.triu(np.full((S, S), -1e9, np.float32), 1)
    e = np.exp(s - s.max(-1, keepdims=True))
    p = e / e.sum(-1, keepdims=True)
    return (p @ v).transpose(0, 2, 1, 3).reshape(B, S, D) @ wo


def transformer_layer(x, p, heads=1, eps=1e-6):
    """ts.ops.transformer_layer (the seed-002 decoder layer) in NumPy."""
    x = x + _attention(_rms(x, p["input_layernorm"], eps), p["wq"], p["wk"], p["wv"], p["wo"], heads)
    return x + _silu(_rms(x, p["post_attention_layernorm"], eps) @ p["mlp_up"]) @ p["mlp_down"]


def _delta_network(src, tgt, d, p):
    dt = (tgt - src) @ p["delta_proj_w"] + p["delta_proj_b"]
    g = 1 / (1 + np.exp(-(_silu((src + tgt) / 2.0 @ p["gate1_w"] + p["gate1_b"]) @ p["gate2_w"] + p["gate2_b"])))
    return (dt * g * (1.0 / (1.0 + 0.1 * d))) @ p["output_proj_w"] + p["output_proj_b"]


def causal_lm_forward(input_ids, params, c):
    P = dict(zip(param_names(c), [np.asarray(x, np.float32) for x in params]))
    hidden = P["embed_tokens"][input_ids]
    outs = []
    for layer in range(c.num_hidden_layers):
        p = f"layers.{layer}."
        hidden = transformer_layer(hidden, {k: v for k, v in ((k[len(p):], v) for k, v in P.items() if k.startswith(p))},
                                   c.num_attention_heads, c.rms_eps)
        n = min(len(outs), layer, c.max_delta_distance)
        if n:
            contribs = []
            for i in range(n):
                q = f"{p}delta.{i}."
                contribs.append(_delta_network(outs[-(i + 1)], hidden, i + 1,
                                               {k[len(q):]: v for k, v in P.items() if k.startswith(q)}))
            if not c.use_attention_deltas or n == 1:
                agg = np.mean(contribs, axis=0)
            else:
                s = np.stack([(hidden * x).sum(-1) / math.sqrt(hidden.shape[-1]) for x in contribs], -1)
                w = np.exp(s - s.max(-1, keepdims=True))
                w = w / w.sum(-1, keepdims=True)
                agg = sum(w[..., i:i + 1] * contribs[i] for i in range(n))
            hidden = hidden + agg
        outs.append(hidden)
    return _rms(hidden, P["norm"], c.rms_eps) @ P["lm_head"]
