"""ONNX converters of the GEMM and GDN gating ops: ts.gemm, ts.gating_function, ts.delta_connection,
and the fused ops of the graph pipeline (ts.gemm_epilogue, ts.fused_delta_gating), decomposed into
MatMul / Mul / Sigmoid / Add nodes with the semantics of tessera.ir.ts_dialect (DESIGN §8).

Products are computed in the result's element type (f32, or f64 for f64 operands), which is how
tessera's kernels accumulate: f16 / bf16 operands are cast up before the MatMul.
"""
from __future__ import annotations

import math

import numpy as np
from mlir import ir

from .onnx_ops import registry

CONVERTERS = {}
converter = registry(CONVERTERS)

# the run-time skipping threshold of a sparse fused_delta_gating without a `tessera.threshold`
# attribute: the THRESH default of tessera.gdn.generated.fused_delta_gating
_DEFAULT_SPARSE_THRESHOLD = 0.01


def _segments(op):
    return list(ir.DenseI32ArrayAttr(op.attributes["operandSegmentSizes"]))


def _distance_scale(distance):
    return math.exp(-0.1 * distance)   # distance_scale(d) = exp(-0.1 · d)


def _gate(b, delta, weights, distance, acc):
    """sigmoid(exp(-0.1·d) · (delta @ W)) with delta already of the accumulation type `acc`."""
    logits = b.node("MatMul", [delta, b.operand(weights, acc)])
    scaled = b.node("Mul", [logits, b.scalar(_distance_scale(distance), acc)])
    return b.node("Sigmoid", [scaled])


def _delta(b, source, target, acc):
    """target − source in the operands' type (as the kernels subtract), then cast to `acc`."""
    delta_type = b.elem(target)
    delta = b.math("Sub", [target, source], delta_type)
    return b.cast(delta, delta_type, acc)


@converter("ts.gemm")
def _gemm(b, op):
    """a @ b, batched over leading dims with NumPy broadcasting (ONNX MatMul has the same rule)."""
    acc = b.elem(op.results[0])
    return b.node("MatMul", [b.operand(v, acc) for v in op.operands])


@converter("ts.gemm_epilogue")
def _gemm_epilogue(b, op):
    """multiplier · act(scale · (a @ b)), the optional operands given by operandSegmentSizes."""
    seg = _segments(op)
    operands = list(op.operands)
    acc = b.elem(op.results[0])
    y = b.node("MatMul", [b.operand(operands[0], acc), b.operand(operands[1], acc)])
    if seg[2]:
        y = b.node("Mul", [y, b.operand(operands[2], acc)])
    activation = ir.StringAttr(op.attributes["activation"]).value
    if activation == "sigmoid":
        y = b.node("Sigmoid", [y])
    elif activation != "none":
        raise b.error(op, f"cannot export 'ts.gemm_epilogue' with activation {activation!r} to ONNX")
    if seg[3]:
        y = b.node("Mul", [b.operand(operands[2 + seg[2]], acc), y])
    return y


@converter("ts.gating_function")
def _gating_function(b, op):
    delta, weights = op.operands
    acc = b.elem(op.results[0])
    distance = ir.FloatAttr(op.attributes["distance"]).value
    return _gate(b, b.operand(delta, acc), weights, distance, acc)


@converter("ts.delta_connection")
def _delta_connection(b, op):
    """(t − s) · gating_function(t − s, W, d)."""
    source, target, weights = op.operands
    acc = b.elem(op.results[0])
    delta = _delta(b, source, target, acc)
    return b.node("Mul", [delta, _gate(b, delta, weights, ir.FloatAttr(op.attributes["distance"]).value, acc)])


@converter("ts.fused_delta_gating")
def _fused_delta_gating(b, op):
    """Σ_i c_i · delta_connection(s_i, t, W_i, d_i) (+ residual). A sparse op skips, at run time, each
    connection whose |c_i| is below its threshold: here a Where on that condition keeps the term or 0."""
    seg = _segments(op)
    n = seg[1]
    operands = list(op.operands)
    target, sources, weights = operands[0], operands[1:1 + n], operands[1 + n:1 + 2 * n]
    coefficients = operands[1 + 2 * n:1 + 3 * n]
    distances = list(ir.DenseF64ArrayAttr(op.attributes["distances"]))
    sparse = ir.BoolAttr(op.attributes["sparse"]).value
    threshold = ir.FloatAttr(op.attributes["tessera.threshold"]).value \
        if "tessera.threshold" in op.attributes else _DEFAULT_SPARSE_THRESHOLD
    acc = b.elem(op.results[0])
    total = None
    for source, w, c, d in zip(sources, weights, coefficients, distances):
        delta = _delta(b, source, target, acc)
        coefficient = b.operand(c, acc)
        term = b.node("Mul", [b.node("Mul", [coefficient, delta]), _gate(b, delta, w, d, acc)])
        if sparse:
            keep = b.node("GreaterOrEqual", [b.node("Abs", [coefficient]), b.scalar(threshold, acc)])
            term = b.node("Where", [keep, term, b.scalar(0.0, acc)])
        total = term if total is None else b.node("Add", [total, term])
    if total is None:   # no connections left: the sum is zero
        total = b.const(np.zeros(b.shape(op.results[0])), acc)
    if seg[4]:
        total = b.node("Add", [total, b.operand(operands[-1], acc)])
    return total


@converter("ts.fused_delta_gating_grad")
def _fused_delta_gating_grad(b, op):
    raise b.error(op, "cannot export 'ts.fused_delta_gating_grad' to ONNX: export the forward graph "
                      "(gradient graphs are for training in tessera)")
