"""The K-loop pattern the GEMM passes act on (`tessera-use-wgmma`, `tessera-pipeline-mma`).

A K loop is an `scf.for` whose only loop-carried value is an accumulator that starts as a splat
constant, goes through exactly one `tile.mma` fed by two `tile.load`s of windows (no mask, no other,
each load and its view used only there) and is yielded back unchanged. Anything else in the body is
left where it is by the rewrites."""
from __future__ import annotations

from mlir import ir

from ..ir import builders as tb


def _single_use(v):
    return len(list(v.uses)) == 1


def _plain_window_load(v):
    ld = v.owner
    if isinstance(ld, ir.Block) or ld.operation.name != "tile.load" or not _single_use(v):
        return None
    src, mask, other = tb.operands(ld.operation)
    if mask is not None or other is not None or not tb.is_window(src.type):
        return None
    if isinstance(src.owner, ir.Block) or src.owner.operation.name != "tile.view" or not _single_use(src):
        return None
    return ld.operation


def splat_init(loop):
    """The accumulator's initial value as a Python float when it is a splat constant, else None."""
    init = list(loop.operands)[3]
    cst = init.owner
    if isinstance(cst, ir.Block) or cst.operation.name != "arith.constant":
        return None
    attr = ir.DenseElementsAttr(cst.attributes["value"])
    return float(ir.FloatAttr(attr.get_splat_value()).value) if attr.is_splat else None


def match(loop):
    """(mma, a_load, b_load) of a K loop, or None."""
    body = loop.regions[0].blocks[0]
    mmas = [op.operation for op in body.operations if op.operation.name == "tile.mma"]
    if len(mmas) != 1:
        return None
    mma = mmas[0]
    a, b, acc = tb.operands(mma)
    iter_args = list(body.arguments)[1:]
    if acc is None or len(iter_args) != 1 or acc != iter_args[0]:
        return None
    if not _single_use(acc) or not _single_use(mma.results[0]):
        return None
    yield_op = body.operations[len(body.operations) - 1]
    if list(yield_op.operands)[0] != mma.results[0]:
        return None
    a_ld, b_ld = _plain_window_load(a), _plain_window_load(b)
    if a_ld is None or b_ld is None or splat_init(loop) is None:
        return None
    return mma, a_ld, b_ld


def mark(module_op, matches, attr):
    """Give every scf.for of the module's kernels for which `matches(loop)` holds the unit attribute
    `attr` (the loops are collected first, then marked)."""
    loops = []

    def visit(op):
        if op.name == "scf.for" and matches(op):
            loops.append(op)
        return ir.WalkResult.ADVANCE
    for f in module_op.regions[0].blocks[0].operations:
        if f.operation.name == "func.func" and "tessera.kernel" in f.attributes:
            f.operation.walk(visit)
    for loop in loops:
        loop.attributes[attr] = ir.UnitAttr.get()
