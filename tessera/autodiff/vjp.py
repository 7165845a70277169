"""The VJP rule table: one entry per op a traced graph contains (`ts` ops and the arith/math/tensor ops
the frontend emits on tensors). A rule gets the op's operands and results as GraphTensors and the
cotangents of its results (None where a result has none) and returns one cotangent per operand (None
where an operand gets none). Rules emit ordinary graph ops through the frontend's IMPLS, so a backward
graph is pruned, fused and lowered like a forward one.

Cotangents are accumulated in f32 (f64 for f64 values); `None`-shaped values (MLIR scalars, which the
executor only runs folded into kernels) get 1-element tensors as cotangents."""
from __future__ import annotations

import math

import numpy as np
from mlir import ir
from mlir.dialects import arith

from .. import dtypes as dt
from ..frontend.function import GraphTensor
from ..graph.ops import IMPLS, _slice, broadcast, cast, const, from_numpy, ttype

RULES = {}


def rule(*names):
    def deco(f):
        for n in names:
            RULES[n] = f
        return f
    return deco


def acc_dtype(d):
    return dt.f64 if d is dt.f64 else dt.f32


add, sub, mul, div = IMPLS["ts.add"], IMPLS["ts.subtract"], IMPLS["ts.multiply"], IMPLS["ts.divide"]
reshape, transpose, gemm, tsum = IMPLS["ts.reshape"], IMPLS["ts.transpose"], IMPLS["ts.gemm"], IMPLS["ts.sum"]


def as_tensor(x):
    """A scalar (shape None) as a 1-element tensor, the form cotangents of scalars take."""
    return x if x.shape is not None else broadcast(x, (1,))


def up(x, like=None):
    """`x` in the accumulation dtype (of `like`'s dtype when given)."""
    return cast(x, acc_dtype((like if like is not None else x).dtype))


def unbroadcast(ct, shape):
    """Sum `ct` over the axes along which a value of `shape` was broadcast to ct's shape."""
    if shape is None or shape == ():
        total = ct if ct.shape == (1,) else tsum(ct)
        return total if shape is None else reshape(total, ())
    if ct.shape == tuple(shape):
        return ct
    lead = len(ct.shape) - len(shape)
    axes = list(range(lead)) + [lead + i for i, s in enumerate(shape) if s == 1 and ct.shape[lead + i] != 1]
    if axes:
        ct = tsum(ct, axis=axes, keepdims=True) if len(axes) < len(ct.shape) else reshape(tsum(ct), (1,) * len(ct.shape))
    return reshape(ct, shape)


def select(cond_op, a, b):
    """arith.select(cond, a, b) on tensors of one shape (a mask that stays inside one elementwise group)."""
    from ..graph.ops import _tracer
    with _tracer().loc():
        return GraphTensor(arith.SelectOp(cond_op, a.v, b.v).result, a.shape, a.dtype)


def equal(a, b):
    """The i1 mask a == b (floats)."""
    from ..graph.ops import _tracer
    with _tracer().loc():
        return arith.CmpFOp(arith.CmpFPredicate.OEQ, a.v, b.v).result


def zeros(shape, d):
    return broadcast(const(0.0, None, d), shape) if shape not in (None, ()) else const(0.0, (1,), d)


# -- elementwise ----------------------------------------------------------------------------------

@rule("arith.addf")
def _addf(ins, outs, cts, op):
    return [cts[0], cts[0]]


@rule("arith.subf")
def _subf(ins, outs, cts, op):
    return [cts[0], mul(cts[0], -1.0)]


@rule("arith.mulf")
def _mulf(ins, outs, cts, op):
    a, b = ins
    return [mul(cts[0], up(as_tensor(b), cts[0])), mul(cts[0], up(as_tensor(a), cts[0]))]


@rule("arith.divf")
def _divf(ins, outs, cts, op):
    a, b = ins
    bb = up(as_tensor(b), cts[0])
    da = div(cts[0], bb)
    return [da, mul(mul(da, up(as_tensor(outs[0]), cts[0])), -1.0)]


@rule("arith.maximumf", "arith.minimumf")
def _pick(ins, outs, cts, op):
    """To the operand the result equals; a tie goes to the first (the sub-gradient JAX picks)."""
    a = up(as_tensor(ins[0]), cts[0])
    y = up(as_tensor(outs[0]), cts[0])
    to_a = select(equal(a, y), cts[0], zeros(cts[0].shape, cts[0].dtype))
    return [to_a, sub(cts[0], to_a)]


@rule("math.exp")
def _exp(ins, outs, cts, op):
    return [mul(cts[0], up(as_tensor(outs[0]), cts[0]))]


@rule("math.log")
def _log(ins, outs, cts, op):
    return [div(cts[0], up(as_tensor(ins[0]), cts[0]))]


@rule("math.sqrt")
def _sqrt(ins, outs, cts, op):
    return [div(mul(cts[0], 0.5), up(as_tensor(outs[0]), cts[0]))]


@rule("math.tanh")
def _tanh(ins, outs, cts, op):
    y = up(as_tensor(outs[0]), cts[0])
    return [mul(cts[0], sub(1.0, mul(y, y)))]


@rule("math.absf")
def _abs(ins, outs, cts, op):
    x = up(as_tensor(ins[0]), cts[0])
    return [select(equal(x, up(as_tensor(outs[0]), cts[0])), cts[0], mul(cts[0], -1.0))]


@rule("arith.negf")
def _neg(ins, outs, cts, op):
    return [mul(cts[0], -1.0)]


@rule("ts.sigmoid")
def _sigmoid(ins, outs, cts, op):
    y = up(outs[0], cts[0])
    return [mul(cts[0], mul(y, sub(1.0, y)))]


@rule("ts.cast")
def _cast(ins, outs, cts, op):
    return [up(cts[0], ins[0]) if ins[0].dtype.is_float else None]


@rule("ts.broadcast")
def _broadcast(ins, outs, cts, op):
    return [unbroadcast(cts[0], ins[0].shape)]


@rule("arith.constant")
def _constant(ins, outs, cts, op):
    return []


@rule("tensor.extract")
def _extract(ins, outs, cts, op):
    """x[i, j] (a scalar): the cotangent lands on one element (a one-hot constant times it)."""
    x = ins[0]
    mask = np.zeros(x.shape, np.float64 if cts[0].dtype is dt.f64 else np.float32)
    mask[tuple(ir.IntegerAttr(o.owner.attributes["value"]).value for o in op.operands[1:])] = 1
    return [mul(from_numpy(mask), cts[0])] + [None] * (len(ins) - 1)


# -- shapes ---------------------------------------------------------------------------------------

@rule("ts.reshape")
def _reshape(ins, outs, cts, op):
    return [reshape(cts[0], ins[0].shape)]


@rule("ts.transpose")
def _transpose(ins, outs, cts, op):
    perm = list(ir.DenseI64ArrayAttr(op.attributes["perm"]))
    return [transpose(cts[0], list(np.argsort(perm)))]


@rule("ts.slice")
def _slice_rule(ins, outs, cts, op):
    """Zeros around the slice: the cotangent concatenated with zero blocks along each sliced axis."""
    x = ins[0]
    offsets = list(ir.DenseI64ArrayAttr(op.attributes["offsets"]))
    sizes = list(ir.DenseI64ArrayAttr(op.attributes["sizes"]))
    ct = reshape(cts[0], sizes)
    shape = list(sizes)
    for ax, (lo, n, full) in enumerate(zip(offsets, sizes, x.shape)):
        parts = []
        if lo:
            parts.append(zeros(tuple(shape[:ax] + [lo] + shape[ax + 1:]), ct.dtype))
        parts.append(ct)
        if full - lo - n:
            parts.append(zeros(tuple(shape[:ax] + [full - lo - n] + shape[ax + 1:]), ct.dtype))
        if len(parts) > 1:
            ct = IMPLS["ts.concatenate"](parts, ax)
        shape[ax] = full
    return [ct]


@rule("ts.concatenate")
def _concatenate(ins, outs, cts, op):
    ax = ir.IntegerAttr(op.attributes["axis"]).value
    n = ins[0].shape[ax]
    ct = cts[0]
    pre = (slice(None),) * ax
    return [_slice(ct, pre + (slice(0, n),)), _slice(ct, pre + (slice(n, ct.shape[ax]),))]


# -- reductions -----------------------------------------------------------------------------------

def _keep(ct, x, axes, keepdims):
    """A reduction's cotangent with the reduced axes as ones (broadcastable against the input)."""
    if keepdims:
        return ct
    return reshape(ct, tuple(1 if i in axes else s for i, s in enumerate(x.shape)))


@rule("ts.reduce")
def _reduce(ins, outs, cts, op):
    x = ins[0]
    kind = ir.StringAttr(op.attributes["kind"]).value
    axes = list(ir.DenseI64ArrayAttr(op.attributes["axes"]))
    keepdims = ir.BoolAttr(op.attributes["keepdims"]).value
    ct = _keep(as_tensor(cts[0]), x, axes, keepdims)
    if kind == "mean":
        ct = mul(ct, 1.0 / math.prod(x.shape[a] for a in axes))
    full = broadcast(ct, x.shape)
    if kind in ("sum", "mean"):
        return [full]
    # max / min: to the elements equal to the result (every tied element gets it, as NumPy's gradient
    # of a masked sum would)
    xa = up(x, ct)
    y = broadcast(_keep(up(as_tensor(outs[0]), ct), x, axes, keepdims), x.shape)
    return [select(equal(xa, y), full, zeros(x.shape, ct.dtype))]


@rule("ts.softmax")
def _softmax(ins, outs, cts, op):
    ax = ir.IntegerAttr(op.attributes["axis"]).value
    y = up(outs[0], cts[0])
    dot = tsum(mul(cts[0], y), axis=ax, keepdims=True)
    return [mul(y, sub(cts[0], dot))]


@rule("ts.l2_norm")
def _l2_norm(ins, outs, cts, op):
    x = ins[0]
    ax = ir.IntegerAttr(op.attributes["axis"]).value
    keepdims = ir.BoolAttr(op.attributes["keepdims"]).value
    ct = _keep(cts[0], x, [ax], keepdims)
    n = _keep(up(outs[0], cts[0]), x, [ax], keepdims)
    return [mul(up(x, ct), div(ct, n))]


# -- matrix products and the GDN ops --------------------------------------------------------------

def _swap_last(x):
    perm = list(range(x.ndim))
    perm[-1], perm[-2] = perm[-2], perm[-1]
    return transpose(x, perm)


def _flat2(x):
    return reshape(x, (-1, x.shape[-1])) if x.ndim != 2 else x


def _gemm_grads(a, b, ct):
    """d/da and d/db of a @ b (NumPy matmul broadcasting) for the cotangent ct of the product."""
    a, b = up(a, ct), up(b, ct)
    if b.ndim == 2:
        da = gemm(ct, transpose(b))
        db = gemm(transpose(_flat2(a)), _flat2(ct))
        return da, db
    da = unbroadcast(gemm(ct, _swap_last(b)), a.shape)
    db = unbroadcast(gemm(_swap_last(a), ct), b.shape)
    return da, db


@rule("ts.gemm")
def _gemm(ins, outs, cts, op):
    return list(_gemm_grads(ins[0], ins[1], cts[0]))


def _distance(op):
    return ir.FloatAttr(op.attributes["distance"]).value


@rule("ts.gating_function")
def _gating(ins, outs, cts, op):
    """g = sigmoid(s · (δ @ W)), s = exp(-0.1 d)."""
    delta, w = ins
    s = math.exp(-0.1 * _distance(op))
    g = up(outs[0], cts[0])
    dz = mul(mul(cts[0], mul(g, sub(1.0, g))), s)
    return list(_gemm_grads(delta, w, dz))


@rule("ts.delta_connection")
def _delta_connection(ins, outs, cts, op):
    """out = δ · g(δ), δ = target - source, g the gating function of δ and W."""
    source, target, w = ins
    s = math.exp(-0.1 * _distance(op))
    delta = up(sub(target, source), cts[0])
    g = IMPLS["ops.gating_function"](cast(delta, dt.f32), w, _distance(op))   # the forward's gate, again
    g = up(g, cts[0])
    dz = mul(mul(mul(cts[0], delta), mul(g, sub(1.0, g))), s)
    d_delta, dw = _gemm_grads(delta, w, dz)
    d_delta = add(d_delta, mul(cts[0], g))
    return [mul(d_delta, -1.0), d_delta, dw]


@rule("ts.dropout")
def _dropout(ins, outs, cts, op):
    """The forward's mask: it depends only on the element's flat index, the seed and p."""
    ct = cts[0]
    v = ir.Operation.create("ts.dropout", results=[ttype(ct.shape, ct.dtype)], operands=[ct.v],
                            attributes={"p": op.attributes["p"], "seed": op.attributes["seed"]}, loc=op.location).result
    return [GraphTensor(v, ct.shape, ct.dtype)]


@rule("ts.embedding")
def _embedding(ins, outs, cts, op):
    """table[ids]: the cotangent rows added into the rows they were read from, as onehot(ids)ᵀ @ ct."""
    ids, table = ins
    vocab = table.shape[0]
    flat_ids = reshape(ids, (-1, 1))
    from ..graph.ops import _tracer
    cols = broadcast(from_numpy(np.arange(vocab, dtype=np.int32).reshape(1, vocab)), (flat_ids.shape[0], vocab))
    idc = broadcast(cast(flat_ids, dt.i32), (flat_ids.shape[0], vocab))
    with _tracer().loc():
        hit = arith.CmpIOp(arith.CmpIPredicate.eq, idc.v, cols.v).result
    ct = _flat2(cts[0])
    onehot = select(hit, broadcast(const(1.0, None, ct.dtype), idc.shape), zeros(idc.shape, ct.dtype))
    return [None, gemm(transpose(onehot), ct)]


@rule("ts.fused_delta_gating")
def _fused_delta_gating(ins, outs, cts, op):
    """The fused aggregation's backward pass is one op, ts.fused_delta_gating_grad (one kernel); the
    residual's gradient is the output's cotangent itself."""
    seg = list(ir.DenseI32ArrayAttr(op.attributes["operandSegmentSizes"]))
    n = seg[1]
    target, srcs, ws, coeffs = ins[0], ins[1:1 + n], ins[1 + n:1 + 2 * n], ins[1 + 2 * n:1 + 3 * n]
    dy = cast(cts[0], dt.f32)
    f32 = ir.F32Type.get()
    types = [ttype(target.shape, dt.f32)] + [ttype(s.shape, dt.f32) for s in srcs] + \
        [ttype(w.shape, dt.f32) for w in ws] + [ir.RankedTensorType.get([n], f32)]
    attrs = {"distances": op.attributes["distances"], "sparse": op.attributes["sparse"],
             "operandSegmentSizes": ir.DenseI32ArrayAttr.get([1, n, n, n, 1]),
             "resultSegmentSizes": ir.DenseI32ArrayAttr.get([1, n, n, 1])}
    if "tessera.threshold" in op.attributes:
        attrs["tessera.threshold"] = op.attributes["tessera.threshold"]
    grad = ir.Operation.create("ts.fused_delta_gating_grad", results=types,
                               operands=[x.v for x in [target] + srcs + ws + coeffs] + [dy.v],
                               attributes=attrs, loc=op.location)
    r = list(grad.results)
    shaped = [GraphTensor(v, x.shape, dt.f32) for v, x in zip(r[:1 + 2 * n], [target] + srcs + ws)]
    dc = GraphTensor(r[-1], (n,), dt.f32)
    dcoeffs = [_slice(dc, (slice(i, i + 1),)) for i in range(n)]
    return shaped + dcoeffs + ([cts[0]] if seg[4] else [])


@rule("ts.gemm_epilogue")
def _gemm_epilogue(ins, outs, cts, op):
    """out = m · act(s · (a @ b)), act = sigmoid or none (tessera-optimize-gating-networks)."""
    seg = list(ir.DenseI32ArrayAttr(op.attributes["operandSegmentSizes"]))
    a, b = ins[0], ins[1]
    scale = ins[2] if seg[2] else None
    m = ins[2 + seg[2]] if seg[3] else None
    act = ir.StringAttr(op.attributes["activation"]).value
    ct = cts[0]
    ab = gemm(up(a, ct), up(b, ct))
    z = mul(ab, up(as_tensor(scale), ct)) if scale is not None else ab
    y = IMPLS["ts.sigmoid"](z) if act == "sigmoid" else z
    dy = mul(ct, up(m, ct)) if m is not None else ct
    dz = mul(dy, mul(y, sub(1.0, y))) if act == "sigmoid" else dy
    dab = mul(dz, up(as_tensor(scale), ct)) if scale is not None else dz
    grads = list(_gemm_grads(a, b, dab))
    if scale is not None:
        grads.append(tsum(mul(dz, ab)))
    if m is not None:
        grads.append(mul(ct, y))
    return grads

