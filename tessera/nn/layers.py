"""The `ts.nn` layers seed 002 builds its models from. Weights are NumPy arrays of the layer's dtype;
`Linear` keeps its weight as [in, out] (x @ W, the layout tessera's gemm reads directly; PyTorch's is
[out, in]). Initialisation is seeded (`seed=`), scaled like PyTorch's defaults."""
from __future__ import annotations

import math

import numpy as np

import tessera as ts
from . import functional as F
from .module import Module, Parameter
from ..errors import TesseraError


def _np_dtype(dtype):
    from ..dtypes import DType
    if dtype is None:
        return np.float32
    if isinstance(dtype, DType):
        return dtype.to_numpy()
    return np.dtype(dtype)


def _rng(seed):
    return np.random.default_rng(seed)


def _positive(name, **values):
    for k, v in values.items():
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise TesseraError(f"ts.nn.{name}: {k} must be a positive int, got {v!r}")


class Linear(Module):
    """y = x @ weight + bias; weight [in_features, out_features]."""

    def __init__(self, in_features, out_features, bias=True, dtype=None, seed=0):
        super().__init__()
        _positive("Linear", in_features=in_features, out_features=out_features)
        self.in_features, self.out_features = in_features, out_features
        bound = 1.0 / math.sqrt(in_features)
        rng = _rng(seed)
        self.weight = Parameter(rng.uniform(-bound, bound, (in_features, out_features)), _np_dtype(dtype))
        if bias:
            self.bias = Parameter(rng.uniform(-bound, bound, (out_features,)), _np_dtype(dtype))
        else:
            self.bias = None

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)


class Embedding(Module):
    """Rows of weight [num_embeddings, embedding_dim] for integer ids."""

    def __init__(self, num_embeddings, embedding_dim, dtype=None, seed=0):
        super().__init__()
        _positive("Embedding", num_embeddings=num_embeddings, embedding_dim=embedding_dim)
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.weight = Parameter(_rng(seed).standard_normal((num_embeddings, embedding_dim)), _np_dtype(dtype))

    def forward(self, ids):
        return ts.ops.embedding(ids, self.weight)


class RMSNorm(Module):
    """x / sqrt(mean(x²) + eps) · weight over the last axis."""

    def __init__(self, hidden_size, eps=1e-6, dtype=None):
        super().__init__()
        _positive("RMSNorm", hidden_size=hidden_size)
        self.eps = float(eps)
        self.weight = Parameter(np.ones(hidden_size), _np_dtype(dtype))

    def forward(self, x):
        return F.rms_norm(x, self.weight, self.eps)


class SiLU(Module):
    def forward(self, x):
        return F.silu(x)


class Sigmoid(Module):
    def forward(self, x):
        return ts.sigmoid(x)


_ACTIVATIONS = {"silu": F.silu, "sigmoid": ts.sigmoid, "tanh": ts.tanh}


class MLP(Module):
    """down(act(up(x))): up [hidden, intermediate], down [intermediate, hidden]; no biases unless asked."""

    def __init__(self, hidden_size, intermediate_size, activation="silu", bias=False, dtype=None, seed=0):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise TesseraError(f"ts.nn.MLP: activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        self.activation = activation
        self.up = Linear(hidden_size, intermediate_size, bias=bias, dtype=dtype, seed=seed)
        self.down = Linear(intermediate_size, hidden_size, bias=bias, dtype=dtype, seed=seed + 1)

    def forward(self, x):
        return self.down(_ACTIVATIONS[self.activation](self.up(x)))


class MultiHeadAttention(Module):
    """Multi-head attention (no projection biases): forward(query, key, value, attention_mask=None,
    attn_bias=None). `attention_mask` [B, S_key] of 1 (attend) / 0 (padding) masks keys; `attn_bias` is
    added to the [B, H, S_q, S_key] scores; `causal=True` adds the causal mask. `dropout` is accepted as the
    seed writes it and must be 0 at inference (a module in training mode with dropout > 0 is refused:
    attention dropout is not implemented)."""

    def __init__(self, hidden_size, num_heads, dropout=0.0, causal=False, dtype=None, seed=0):
        super().__init__()
        _positive("MultiHeadAttention", hidden_size=hidden_size, num_heads=num_heads)
        if hidden_size % num_heads:
            raise TesseraError(f"ts.nn.MultiHeadAttention: hidden_size {hidden_size} is not a multiple of "
                               f"num_heads {num_heads}")
        self.hidden_size, self.num_heads = hidden_size, num_heads
        self.dropout, self.causal = float(dropout), bool(causal)
        rng = _rng(seed)
        for name in ("wq", "wk", "wv", "wo"):
            setattr(self, name, Parameter(rng.standard_normal((hidden_size, hidden_size)) / math.sqrt(hidden_size),
                                          _np_dtype(dtype)))

    def forward(self, query, key, value, attention_mask=None, attn_bias=None):
        if self.training and self.dropout > 0:
            raise TesseraError("ts.nn.MultiHeadAttention: attention dropout is not implemented (use dropout=0.0 "
                               "or eval())")
        bias = attn_bias
        if self.causal:
            c = F.causal_bias(query.shape[1])
            bias = c if bias is None else bias + c
        if attention_mask is not None:
            p = F.padding_bias(attention_mask)   # f32: -1e9 has no fp8 / f16 value
            bias = p if bias is None else bias + p
        return F.multi_head_attention(query, key, value, self.wq, self.wk, self.wv, self.wo, bias, self.num_heads)
