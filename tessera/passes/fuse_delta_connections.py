"""tessera-fuse-delta-connections: a sum of gated deltas into one target → one ts.fused_delta_gating.

Matches the root of an `arith.addf` tree whose leaves are delta-connection terms with the same
target — `ts.delta_connection(s, t, W){d}` or the hand-written `(t - s) · ts.gating_function(t - s,
W){d}`, optionally scaled by a broadcast scalar coefficient — plus optional zero constants and at
most one residual leaf equal to the target. Two or more terms become
`ts.fused_delta_gating(t, s..., W..., c..., [t])` (coefficient 1.0 where none was given), which a
single kernel computes reading the target once, each source once, writing once. Terms marked
`tessera.runtime_weight` by tessera-prune-sparse-deltas select the mask-skipping kernel
(`sparse = true`). Dead ops left behind are erased.
"""
from __future__ import annotations

from mlir import ir
from mlir.dialects import arith

from .graph_match import add_leaves, erase_dead, match_term, splat_value, strip_casts

name = "tessera-fuse-delta-connections"


def _roots(func_op):
    roots = []

    def visit(op):
        if op.name == "arith.addf":
            uses = list(op.results[0].uses)
            inner = len(uses) == 1 and uses[0].owner.operation.name == "arith.addf"
            if not inner:
                roots.append(op)
        return ir.WalkResult.ADVANCE
    func_op.walk(visit)
    return roots


def _fuse(root):
    leaves = add_leaves(root.results[0])
    terms, residual = [], None
    for leaf in leaves:
        if splat_value(leaf) == 0.0:
            continue
        t = match_term(leaf)
        if t is not None:
            terms.append(t)
            continue
        if residual is None:
            residual = leaf
            continue
        return False
    if len(terms) < 2:
        return False
    target = terms[0].target
    if any(t.target != target for t in terms):
        return False
    if residual is not None and strip_casts(residual) != target:
        return False
    f32 = ir.F32Type.get()
    with ir.InsertionPoint(root), root.location:
        coeffs = [t.coeff if t.coeff is not None else arith.ConstantOp(f32, 1.0).result for t in terms]
        marks = [ir.FloatAttr(op.attributes["tessera.runtime_weight"]).value
                 for t in terms for op in t.ops if "tessera.runtime_weight" in op.attributes]
        sparse = bool(marks)
        operands = [target] + [t.source for t in terms] + [t.weights for t in terms] + coeffs + \
            ([target] if residual is not None else [])
        fused = ir.Operation.create(
            "ts.fused_delta_gating", results=[root.results[0].type], operands=operands,
            attributes={"distances": ir.DenseF64ArrayAttr.get([t.distance for t in terms]),
                        "sparse": ir.BoolAttr.get(sparse),
                        "operandSegmentSizes": ir.DenseI32ArrayAttr.get(
                            [1, len(terms), len(terms), len(terms), int(residual is not None)])})
        if marks:  # the run-time skipping threshold chosen by tessera-prune-sparse-deltas
            fused.attributes["tessera.threshold"] = ir.FloatAttr.get(ir.F64Type.get(), max(marks))
    root.results[0].replace_all_uses_with(fused.result)
    return True


def run(module_op):
    for f in module_op.regions[0].blocks[0].operations:
        if f.operation.name != "func.func":
            continue
        fused = False
        for root in _roots(f.operation):
            fused |= _fuse(root)
        if fused:
            erase_dead(f.operation)
