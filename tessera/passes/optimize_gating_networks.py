"""tessera-optimize-gating-networks: gemm → (scale) → sigmoid → multiply → one GEMM with a fused
epilogue, `ts.gemm_epilogue(a, b, [scale], [multiplier]) {activation = "sigmoid"}`.

Matches `x · ts.sigmoid(s · ts.gemm(a, b))` (the scale optional: a broadcast scalar or a splat
constant on either side of the multiply; x may be the other operand on either side, through a
cast) and `x · ts.gating_function(d, W){dist}` (scale exp(-0.1·dist)), where the intermediate
values have no other users. The GEMM's epilogue then applies scale, sigmoid and the product in
registers instead of writing the GEMM result to memory.
"""
from __future__ import annotations

import math

from mlir import ir
from mlir.dialects import arith

from .graph_match import erase_dead, op_of

name = "tessera-optimize-gating-networks"


def _single(v):
    return len(list(v.uses)) == 1


def _scaled_gemm(v):
    """(a, b, scale or None) if v is gemm(a, b) or scale · gemm(a, b)."""
    o = op_of(v)
    if o is None:
        return None
    if o.name == "ts.gemm":
        return o.operands[0], o.operands[1], None
    if o.name == "arith.mulf":
        for g, s in ((o.operands[0], o.operands[1]), (o.operands[1], o.operands[0])):
            go = op_of(g)
            if go is not None and go.name == "ts.gemm" and _single(g):
                so = op_of(s)
                if so is not None and so.name == "ts.broadcast":
                    return go.operands[0], go.operands[1], so.operands[0]
                if so is not None and so.name == "arith.constant":
                    d = ir.DenseElementsAttr(so.attributes["value"])
                    if d.is_splat:
                        return go.operands[0], go.operands[1], None if d.get_splat_value().value == 1.0 else \
                            ("const", d.get_splat_value().value)
    return None


def _rewrite(mul):
    for gate, x in ((mul.operands[0], mul.operands[1]), (mul.operands[1], mul.operands[0])):
        go = op_of(gate)
        if go is None or not _single(gate):
            continue
        if go.name == "ts.sigmoid":
            m = _scaled_gemm(go.operands[0])
            if m is None or not _single(go.operands[0]):
                continue
            a, b, scale = m
        elif go.name == "ts.gating_function":
            a, b = go.operands
            scale = ("const", math.exp(-0.1 * ir.FloatAttr(go.attributes["distance"]).value))
        else:
            continue
        with ir.InsertionPoint(mul), mul.location:
            if isinstance(scale, tuple):
                scale = arith.ConstantOp(ir.F32Type.get(), scale[1]).result
            ops = [a, b] + ([scale] if scale is not None else []) + [x]
            new = ir.Operation.create(
                "ts.gemm_epilogue", results=[mul.results[0].type], operands=ops,
                attributes={"activation": ir.StringAttr.get("sigmoid"),
                            "operandSegmentSizes": ir.DenseI32ArrayAttr.get([1, 1, int(scale is not None), 1])})
        mul.results[0].replace_all_uses_with(new.result)
        return True
    return False


def run(module_op):
    for f in module_op.regions[0].blocks[0].operations:
        if f.operation.name != "func.func":
            continue
        muls = []

        def visit(op):
            if op.name == "arith.mulf":
                muls.append(op)
            return ir.WalkResult.ADVANCE
        f.operation.walk(visit)
        if any([_rewrite(m) for m in muls]):
            erase_dead(f.operation)

