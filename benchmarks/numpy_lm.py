"""The seed-002 causal LM's loss and its gradient in plain NumPy, for benchmarks/training_step.py: a small
reverse-mode tape over NumPy arrays (each op records how to send its cotangent to its inputs) and the model
written on it exactly as tessera/gdn/model_reference.py writes the forward. Not part of tessera; its
gradient is checked against tessera's in tests/test_train.py."""
from __future__ import annotations

import math

import numpy as np


class V:
    """A value on the tape: data, and (input, cotangent -> input's share) pairs."""

    __array_priority__ = 1000

    def __init__(self, data, parents=()):
        self.data, self.parents, self.grad = data, parents, None

    @property
    def shape(self):
        return self.data.shape

    def __add__(self, o):
        o = lift(o)
        return V(self.data + o.data, ((self, lambda g: g), (o, lambda g: g)))

    __radd__ = __add__

    def __sub__(self, o):
        o = lift(o)
        return V(self.data - o.data, ((self, lambda g: g), (o, lambda g: -g)))

    def __rsub__(self, o):
        return lift(o) - self

    def __mul__(self, o):
        o = lift(o)
        return V(self.data * o.data, ((self, lambda g: g * o.data), (o, lambda g: g * self.data)))

    __rmul__ = __mul__

    def __truediv__(self, o):
        o = lift(o)
        return V(self.data / o.data, ((self, lambda g: g / o.data), (o, lambda g: -g * self.data / o.data ** 2)))

    def __rtruediv__(self, o):
        return lift(o) / self

    def __neg__(self):
        return self * -1.0

    def __matmul__(self, o):
        a, b = self.data, o.data
        return V(a @ b, ((self, lambda g: g @ np.swapaxes(b, -1, -2)),
                         (o, lambda g: np.swapaxes(a, -1, -2) @ g if b.ndim > 2 else
                          a.reshape(-1, a.shape[-1]).T @ g.reshape(-1, g.shape[-1]))))

    def reshape(self, *shape):
        return V(self.data.reshape(*shape), ((self, lambda g: g.reshape(self.shape)),))

    def transpose(self, *perm):
        return V(self.data.transpose(*perm), ((self, lambda g: g.transpose(np.argsort(perm))),))

    def sum(self, axis=None, keepdims=False):
        def back(g):
            if axis is not None and not keepdims:
                g = np.expand_dims(g, axis)
            return np.broadcast_to(g, self.shape)
        return V(self.data.sum(axis=axis, keepdims=keepdims), ((self, back),))

    def mean(self, axis=None, keepdims=False):
        n = self.data.size if axis is None else self.shape[axis]
        return self.sum(axis, keepdims) * (1.0 / n)


def lift(x):
    return x if isinstance(x, V) else V(np.asarray(x))


def _unary(f, df):
    def op(x):
        y = f(x.data)
        return V(y, ((x, lambda g: g * df(x.data, y)),))
    return op


exp = _unary(np.exp, lambda x, y: y)
log = _unary(np.log, lambda x, y: 1.0 / x)
sqrt = _unary(np.sqrt, lambda x, y: 0.5 / y)
sigmoid = _unary(lambda x: 1 / (1 + np.exp(-x)), lambda x, y: y * (1 - y))


def stop(x):
    return V(x.data)


def embedding(table, ids):
    def back(g):
        out = np.zeros_like(table.data)
        np.add.at(out, ids.reshape(-1), g.reshape(-1, table.shape[1]))
        return out
    return V(table.data[ids], ((table, back),))


def backward(y):
    """Cotangents of every value on y's tape (y has one element), in reverse topological order."""
    order, seen = [], set()

    def visit(v):
        if id(v) in seen:
            return
        seen.add(id(v))
        for p, _ in v.parents:
            visit(p)
        order.append(v)
    visit(y)
    y.grad = np.ones_like(y.data)
    for v in reversed(order):
        if v.grad is None:
            continue
        for p, share in v.parents:
            g = share(v.grad)
            while g.ndim > p.data.ndim:   # broadcasting: sum the cotangent back to the input's shape
                g = g.sum(0)
            for ax, n in enumerate(p.data.shape):
                if n == 1 and g.shape[ax] != 1:
                    g = g.sum(ax, keepdims=True)
            p.grad = g if p.grad is None else p.grad + g


# -- the model, as tessera/gdn/model_reference.py ---------------------------------------------------------

def _rms(x, w, eps):
    return x / sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def _silu(x):
    return x * sigmoid(x)


def _softmax(s):
    e = exp(s - stop(V(s.data.max(-1, keepdims=True))))
    return e / e.sum(-1, keepdims=True)


def _attention(x, wq, wk, wv, wo, heads):
    B, S, D = x.shape
    dh = D // heads

    def split(t):
        return t.reshape(B, S, heads, dh).transpose(0, 2, 1, 3)
    q, k, v = split(x @ wq), split(x @ wk), split(x @ wv)
    s = q @ k.transpose(0, 1, 3, 2) * (1.0 / math.sqrt(dh)) + np.triu(np.full((S, S), -1e9, x.data.dtype), 1)
    return (_softmax(s) @ v).transpose(0, 2, 1, 3).reshape(B, S, D) @ wo


def _delta_network(src, tgt, d, p):
    dt = (tgt - src) @ p["delta_proj_w"] + p["delta_proj_b"]
    g = sigmoid(_silu((src + tgt) / 2.0 @ p["gate1_w"] + p["gate1_b"]) @ p["gate2_w"] + p["gate2_b"])
    return (dt * g * (1.0 / (1.0 + 0.1 * d))) @ p["output_proj_w"] + p["output_proj_b"]


def loss_and_grads(input_ids, targets, params, c):
    """(loss, [gradient per parameter]) of tessera.gdn.causal_lm_loss (mean-aggregated deltas)."""
    from tessera.gdn.model import param_names
    assert not c.use_attention_deltas, "the NumPy twin covers mean aggregation"
    vs = [V(np.asarray(p)) for p in params]
    P = dict(zip(param_names(c), vs))
    hidden = embedding(P["embed_tokens"], input_ids)
    outs = []
    for layer in range(c.num_hidden_layers):
        pre = f"layers.{layer}."
        lp = {k[len(pre):]: v for k, v in P.items() if k.startswith(pre)}
        x = hidden
        x = x + _attention(_rms(x, lp["input_layernorm"], c.rms_eps), lp["wq"], lp["wk"], lp["wv"], lp["wo"],
                           c.num_attention_heads)
        hidden = x + _silu(_rms(x, lp["post_attention_layernorm"], c.rms_eps) @ lp["mlp_up"]) @ lp["mlp_down"]
        n = min(len(outs), layer, c.max_delta_distance)
        if n:
            contribs = []
            for i in range(n):
                q = f"{pre}delta.{i}."
                contribs.append(_delta_network(outs[-(i + 1)], hidden, i + 1,
                                               {k[len(q):]: v for k, v in P.items() if k.startswith(q)}))
            agg = contribs[0]
            for x in contribs[1:]:
                agg = agg + x
            hidden = hidden + agg * (1.0 / n)
        outs.append(hidden)
    logits = _rms(hidden, P["norm"], c.rms_eps) @ P["lm_head"]
    z = logits - stop(V(logits.data.max(-1, keepdims=True)))
    logp = z - log(exp(z).sum(-1, keepdims=True))
    onehot = np.eye(c.vocab_size, dtype=logits.data.dtype)[targets]
    loss = -(logp * onehot).sum(-1).mean()
    backward(loss)
    return float(loss.data), [v.grad if v.grad is not None else np.zeros_like(v.data) for v in vs]
