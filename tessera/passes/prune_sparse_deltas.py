"""tessera-prune-sparse-deltas{threshold=0.01}: drop negligible delta connections.

For each coefficient-scaled delta-connection term inside an `arith.addf` tree (see
tessera-fuse-delta-connections for the forms): if the coefficient is a compile-time constant
(bound with `ts.compile(..., params=...)`, read through tensor.extract of a constant, casts and
broadcasts) with |c| < threshold, the term is removed from the sum and a remark names the source
and the weight (recorded in the module's `tessera.remarks`); if the coefficient is only known at
run time, the term is marked `tessera.runtime_weight`, so fusion selects the kernel that skips
connections whose weight is below the threshold at run time. Fused ops whose coefficients are all
constants are pruned the same way.
"""
from __future__ import annotations

from mlir import ir

from .graph_match import erase_dead, match_term, op_of, strip_casts
from . import options

name = "tessera-prune-sparse-deltas"


def _static_scalar(v):
    """The value of a scalar known at compile time: constants, or tensor.extract of a constant."""
    v = strip_casts(v)
    o = op_of(v)
    if o is None:
        return None
    if o.name == "arith.constant":
        a = o.attributes["value"]
        return a.value if isinstance(a, (ir.FloatAttr, ir.IntegerAttr)) else None
    if o.name == "tensor.extract":
        src = strip_casts(o.operands[0])
        so = op_of(src)
        if so is None or so.name != "arith.constant":
            return None
        idx = []
        for i in list(o.operands)[1:]:
            io = op_of(i)
            if io is None or io.name != "arith.constant":
                return None
            idx.append(ir.IntegerAttr(io.attributes["value"]).value)
        d = ir.DenseElementsAttr(so.attributes["value"])
        if d.is_splat:
            return d.get_splat_value().value
        import numpy as np
        arr = np.array(d)
        return float(arr[tuple(idx)])
    return None


def _describe(v):
    o = op_of(v)
    if o is None:
        f = v.owner.owner
        if "tessera.arg_names" in f.attributes:
            return f"'{ir.StringAttr(ir.ArrayAttr(f.attributes['tessera.arg_names'])[v.arg_number]).value}'"
        return f"argument #{v.arg_number}"
    return str(o.location)


OPTIONS = {"threshold": options.Option(float, "magnitude below which a delta is pruned", lo=0.0)}


def run(module_op, threshold=0.01):
    thr = float(threshold)
    remarks = []
    for f in module_op.regions[0].blocks[0].operations:
        if f.operation.name != "func.func":
            continue
        adds = []

        def visit(op):
            if op.name == "arith.addf":
                adds.append(op)
            return ir.WalkResult.ADVANCE
        f.operation.walk(visit)
        pruned = False
        for add in adds:
            for pos in range(2):
                leaf = add.operands[pos]
                t = match_term(leaf)
                if t is None or t.coeff is None:
                    continue
                c = _static_scalar(t.coeff)
                if c is None:
                    for op in t.ops:
                        op.attributes["tessera.runtime_weight"] = ir.FloatAttr.get(ir.F64Type.get(), thr)
                    continue
                if abs(c) < thr:
                    other = add.operands[1 - pos]
                    add.results[0].replace_all_uses_with(other)
                    remarks.append(f"pruned the delta connection from {_describe(t.source)} (distance "
                                   f"{t.distance:g}): weight {c:g} is below the threshold {thr:g}")
                    pruned = True
                    break
        if pruned:
            erase_dead(f.operation)
    if remarks:
        old = [ir.StringAttr(a).value for a in ir.ArrayAttr(module_op.attributes["tessera.remarks"])] \
            if "tessera.remarks" in module_op.attributes else []
        module_op.attributes["tessera.remarks"] = ir.ArrayAttr.get([ir.StringAttr.get(r) for r in old + remarks])
