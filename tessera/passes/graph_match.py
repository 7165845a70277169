"""Shared matching helpers of the graph passes: delta-connection terms, add trees, dead-op cleanup."""
from __future__ import annotations

from mlir import ir

_PURE_PREFIXES = ("arith.", "math.", "tensor.", "ts.")


def op_of(v):
    o = v.owner
    return None if isinstance(o, ir.Block) else o.operation


def name_of(v):
    o = op_of(v)
    return o.name if o is not None else None


def strip_casts(v):
    while name_of(v) in ("ts.cast", "ts.broadcast"):
        v = op_of(v).operands[0]
    return v


def splat_value(v):
    """The float value of a splat/scalar constant (through casts and broadcasts), else None."""
    v = strip_casts(v)
    o = op_of(v)
    if o is None or o.name != "arith.constant":
        return None
    a = o.attributes["value"]
    if isinstance(a, ir.FloatAttr):
        return a.value
    if isinstance(a, ir.IntegerAttr):
        return float(a.value)
    d = ir.DenseElementsAttr(a)
    if d.is_splat:
        s = d.get_splat_value()
        return s.value if isinstance(s, (ir.FloatAttr, ir.IntegerAttr)) else None
    return None


class Term:
    """coefficient · delta_connection(source, target, W, distance); `coeff` is a scalar value or None (1)."""

    def __init__(self, source, target, weights, distance, coeff, ops, root):
        self.source, self.target, self.weights, self.distance = source, target, weights, distance
        self.coeff, self.ops, self.root = coeff, ops, root


def match_delta(v):
    """(source, target, W, distance, ops) if v is a delta connection (op or hand-written)."""
    o = op_of(v)
    if o is None:
        return None
    if o.name == "ts.delta_connection":
        s, t, w = o.operands
        return s, t, w, ir.FloatAttr(o.attributes["distance"]).value, [o]
    if o.name != "arith.mulf":
        return None
    a, b = o.operands
    for g, other in ((a, b), (b, a)):
        go = op_of(g)
        if go is None or go.name != "ts.gating_function":
            continue
        delta = go.operands[0]
        if strip_casts(other) != delta and other != delta:
            continue
        so = op_of(delta)
        if so is None or so.name != "arith.subf":
            continue
        t, s = so.operands
        return s, t, go.operands[1], ir.FloatAttr(go.attributes["distance"]).value, [o, go, so]
    return None


def match_term(v):
    d = match_delta(v)
    if d is not None:
        return Term(*d[:4], None, d[4], v)
    o = op_of(v)
    if o is None or o.name != "arith.mulf":
        return None
    a, b = o.operands
    for x, c in ((a, b), (b, a)):
        d = match_delta(x)
        if d is None:
            continue
        co = op_of(c)
        if co is not None and co.name == "ts.broadcast":
            scalar = co.operands[0]
            if not isinstance(scalar.type, ir.ShapedType) and not str(scalar.type).startswith("tensor"):
                return Term(*d[:4], scalar, d[4] + [o], v)
    return None


def add_leaves(v, root=True):
    """Leaves of an addf tree rooted at v (inner nodes must have a single use)."""
    o = op_of(v)
    if o is not None and o.name == "arith.addf" and (root or len(list(v.uses)) == 1):
        return add_leaves(o.operands[0], False) + add_leaves(o.operands[1], False)
    return [v]


def erase_dead(func_op):
    """Erase side-effect-free ops (arith/math/tensor/ts) whose results are unused, to a fixpoint."""
    changed = True
    while changed:
        changed = False
        ops = []

        def visit(op):
            ops.append(op)
            return ir.WalkResult.ADVANCE
        func_op.walk(visit)
        for op in reversed(ops):
            if op.name.startswith(_PURE_PREFIXES) and op.results and all(not list(r.uses) for r in op.results):
                op.erase()
                changed = True
