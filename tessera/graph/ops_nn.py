"""`ts.ops.*` network helpers of @ts.function bodies (registered in graph_ops.IMPLS): GDN gating and delta
connections, embeddings, dropout, losses, the transformer layer, learnable scales, training progress, SVD."""
from __future__ import annotations

import math

import numpy as np
from mlir import ir

from .. import dtypes as dt
from ..errors import GraphBreak
from ..frontend.function import GraphTensor, user_frame
from .ops import (IMPLS, impl, _create, ttype, cast, _err, _tracer, from_numpy, const, constants, _max, _flat,
                        broadcast, _sigmoid, _slice, _gemm, _transpose)


@impl("ops.distance_scaling")
def _distance_scaling(d, decay_rate=0.1):
    if isinstance(d, GraphTensor):
        return IMPLS["ts.exp"](IMPLS["ts.multiply"](cast(d, dt.f32), -float(decay_rate)))
    return math.exp(-float(decay_rate) * d)


def _distance(d):
    if isinstance(d, GraphTensor):
        raise _err("layer distances must be Python numbers (compile-time constants)")
    return ir.FloatAttr.get(ir.F64Type.get(), float(d))


@impl("ops.gating_function")
def _gating_function(delta, weights, layer_distance):
    if delta.shape[-1] != weights.shape[0] or weights.ndim != 2:
        raise _err(f"gating_function: delta {list(delta.shape)} and W {list(weights.shape)} do not match")
    shape = delta.shape[:-1] + (weights.shape[1],)
    return GraphTensor(_create("ts.gating_function", ttype(shape, dt.f32), [delta.v, weights.v],
                               {"distance": _distance(layer_distance)}), shape, dt.f32)


@impl("ops.delta_connection")
def _delta_connection(x_source, x_target, gate_params, layer_distance):
    if x_source.shape != x_target.shape:
        raise _err(f"delta_connection: source {list(x_source.shape)} and target {list(x_target.shape)} differ")
    return GraphTensor(_create("ts.delta_connection", ttype(x_target.shape, dt.f32),
                               [x_source.v, x_target.v, gate_params.v], {"distance": _distance(layer_distance)}),
                       x_target.shape, dt.f32)


@impl("ops.get_training_progress")
def _get_training_progress():
    from ..frontend.function import training_progress
    return training_progress()


@impl("ops.learnable_scale_parameter")
def _learnable_scale_parameter(init=1.0, shape=(), name=None):
    """A learnable scale of the function being traced (`fn.parameters[name]`, created at `init`); the k-th
    unnamed one of a body is `scale<k>`. Its current value is part of the graph."""
    tr = _tracer()
    gf = getattr(tr, "function", None)
    if gf is None:
        raise _err("ts.ops.learnable_scale_parameter() is a parameter of a @ts.function: call it inside one")
    if name is None:
        tr.unnamed_parameters = getattr(tr, "unnamed_parameters", 0) + 1
        name = f"scale{tr.unnamed_parameters - 1}"
    if not isinstance(name, str) or not name.isidentifier():
        raise _err(f"ts.ops.learnable_scale_parameter: name must be an identifier, got {name!r}")
    try:
        value = gf.parameters.create(name, np.full(tuple(shape), init, np.float32))
    except (TypeError, ValueError) as e:
        raise _err(f"ts.ops.learnable_scale_parameter: {e}") from None
    return from_numpy(value) if value.shape else const(float(value), None, dt.f32)


@impl("ops.svd")
def _svd(*args, **kwargs):
    raise GraphBreak("ts.ops.svd runs eagerly (compiled Jacobi kernels driven from Python)", *user_frame())


@impl("ops.transformer_layer")
def _transformer_layer(x, layer_params=None, num_heads=1, eps=1e-6):
    """The seed-002 decoder layer on [B, S, D] (tessera.gdn.model.transformer_block: pre-norm causal attention
    with `num_heads` heads, then a SiLU MLP): `layer_params` is a dict of input_layernorm, wq, wk, wv, wo,
    post_attention_layernorm, mlp_up, mlp_down (tensors or arrays)."""
    from ..gdn.model import TRANSFORMER_PARAMS, causal_mask, transformer_block
    if not isinstance(x, GraphTensor) or x.shape is None or x.ndim != 3:
        raise _err(f"ts.ops.transformer_layer takes a [B, S, D] tensor, got {getattr(x, 'shape', x)!r}")
    if not isinstance(layer_params, dict) or set(TRANSFORMER_PARAMS) - set(layer_params):
        raise _err("ts.ops.transformer_layer(x, layer_params): layer_params is a dict with "
                   f"{', '.join(TRANSFORMER_PARAMS)}")
    if not isinstance(num_heads, int) or num_heads < 1 or x.shape[-1] % num_heads:
        raise _err(f"ts.ops.transformer_layer: num_heads must divide the hidden size {x.shape[-1]}, got {num_heads!r}")
    return transformer_block(x, constants(layer_params), num_heads, float(eps), causal_mask(x.shape[1]))


@impl("ops.embedding")
def _embedding(ids, table):
    if table.ndim != 2 or ids.dtype.is_float:
        raise _err("embedding(ids, table): integer ids and a 2-d table")
    shape = ids.shape + (table.shape[1],)
    return GraphTensor(_create("ts.embedding", ttype(shape, table.dtype), [ids.v, table.v]), shape, table.dtype)


@impl("ops.one_hot")
def _one_hot(ids, num_classes, dtype=dt.f32):
    """ids[...] (integers) → [..., num_classes] with 1 at each id's class and 0 elsewhere (ids outside
    [0, num_classes) give a row of zeros, as jax.nn.one_hot)."""
    from mlir.dialects import arith
    if not isinstance(ids, GraphTensor) or ids.shape is None or ids.dtype.is_float:
        raise _err("ts.ops.one_hot takes a tensor of integer ids")
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise _err(f"ts.ops.one_hot: num_classes must be a positive int, got {num_classes!r}")
    shape = ids.shape + (num_classes,)
    col = cast(IMPLS["ts.reshape"](ids, ids.shape + (1,)), dt.i32)
    classes = from_numpy(np.arange(num_classes, dtype=np.int32).reshape((1,) * len(ids.shape) + (num_classes,)))
    a, b = broadcast(col, shape), broadcast(classes, shape)
    with _tracer().loc():
        hit = arith.CmpIOp(arith.CmpIPredicate.eq, a.v, b.v).result
    one, zero = broadcast(const(1.0, None, dtype), shape), broadcast(const(0.0, None, dtype), shape)
    with _tracer().loc():
        return GraphTensor(arith.SelectOp(hit, one.v, zero.v).result, shape, dtype)


@impl("ops.silu")
def _silu(x):
    return IMPLS["ts.multiply"](x, _sigmoid(x))


@impl("ops.mlp_gating")
def _mlp_gating(gating_input, gate_weights):
    """Seed 001 leaves mlp_gating undefined; with gating_input = [‖delta‖, context @ W] ([..., 1 + G])
    and W [D, G], the shape-consistent reading is: logits = context @ Wᵀ + ‖delta‖ ([..., D])."""
    context = _slice(gating_input, (Ellipsis, slice(1, None)))
    magnitude = _slice(gating_input, (Ellipsis, slice(0, 1)))
    return IMPLS["ts.add"](_gemm(context, _transpose(gate_weights, [1, 0])), magnitude)


@impl("ops.gating_network")
def _gating_network(x, weights):
    """sigmoid(x @ W): the seeds' gating network (a single sigmoid-activated projection)."""
    return _sigmoid(_gemm(x, weights))


@impl("ops.dropout")
def _dropout(x, p=0.1, seed=0, training=True):
    """Inverted dropout with a counter-based hash of (seed, flat element index): reproducible, and
    the same on every backend (tessera.gdn.reference.dropout_mask)."""
    if not training or p == 0.0:
        return x
    if not 0.0 <= p < 1.0:
        raise _err(f"dropout probability must be in [0, 1), got {p}")
    x = cast(x, dt.f32) if x.dtype.bits < 32 else x
    return GraphTensor(_create("ts.dropout", ttype(x.shape, x.dtype), [x.v], {
        "p": ir.FloatAttr.get(ir.F64Type.get(), float(p)),
        "seed": ir.IntegerAttr.get(ir.IntegerType.get_signless(64), int(seed))}), x.shape, x.dtype)


@impl("ops.cross_entropy_loss")
def _cross_entropy_loss(logits, targets, axis=-1):
    """mean over every position of −Σ_classes targets · log_softmax(logits), in f32 (f64 for f64 logits), as a
    1-element tensor;
    `targets` are class probabilities (one-hot or soft) of the logits' shape, as the seeds pass them."""
    if logits.shape is None or targets.shape != logits.shape:
        raise _err(f"ts.ops.cross_entropy_loss takes targets of the logits' shape (probabilities or one-hot), "
                   f"got {list(logits.shape or ())} and {list(targets.shape or ())}")
    acc = dt.f64 if logits.dtype is dt.f64 else dt.f32   # f64 stays f64 (gradient checks)
    lf, tf = cast(logits, acc), cast(targets, acc)
    z = IMPLS["ts.subtract"](lf, _max(lf, axis=axis, keepdims=True))
    lse = IMPLS["ts.log"](IMPLS["ts.sum"](IMPLS["ts.exp"](z), axis=axis, keepdims=True))
    per = IMPLS["ts.sum"](IMPLS["ts.multiply"](tf, IMPLS["ts.subtract"](z, lse)), axis=axis)
    loss = IMPLS["ts.multiply"](IMPLS["ts.mean"](_flat(per), axis=-1) if per.shape is not None else per, -1.0)
    loss.zero_d = True
    return loss


@impl("ops.l1_regularization")
def _l1_regularization(x, weight=1.0):
    """weight · Σ|x|: a 0-d value (for a scalar x, the scalar weight · |x|)."""
    a = IMPLS["ts.maximum"](x, IMPLS["ts.multiply"](x, -1.0))
    s = IMPLS["ts.sum"](a) if a.shape is not None else a
    return IMPLS["ts.multiply"](s, float(weight)) if weight != 1.0 else s
