"""tessera-use-wgmma{num_warps=4}: mark K loops whose tile.mma can run as Hopper warpgroup MMA.

The loop (an `scf.for`) qualifies — and gets `tessera.wgmma` — when its body has a `tile.mma`
whose operands are TMA-marked loads (`tessera-use-tma`) of a 128×64 A tile and a 64×128 B tile of
the same 16-bit type, whose accumulator is a loop-carried value that starts as a zero splat and is
yielded back unchanged, with the loads and the mma used nowhere else, and the CTA is one
warpgroup (num_warps=4). `tessera-lower-tile-to-gpu{arch=sm_90a}` then lowers the loop to TMA
loads into `num_stages` shared-memory slots with mbarriers and `wgmma.mma_async`.
"""
from __future__ import annotations

from mlir import ir

from ..ir import builders as tb

name = "tessera-use-wgmma"


def _single_use(v):
    return len(list(v.uses)) == 1


def _matches(loop) -> bool:
    body = loop.regions[0].blocks[0]
    mmas = [op for op in body.operations if op.operation.name == "tile.mma"]
    if len(mmas) != 1:
        return False
    mma = mmas[0].operation
    a, b, acc = tb.operands(mma)
    if acc is None:
        return False
    for v, shape in ((a, [128, 64]), (b, [64, 128])):
        ld = v.owner
        if not isinstance(ld, ir.Operation) and not hasattr(ld, "name"):
            return False
        if ld.operation.name != "tile.load" or "tessera.tma" not in ld.attributes or not _single_use(v):
            return False
        if list(ir.RankedTensorType(v.type).shape) != shape:
            return False
    if str(ir.RankedTensorType(a.type).element_type) != str(ir.RankedTensorType(b.type).element_type):
        return False
    iter_args = list(body.arguments)[1:]
    if len(iter_args) != 1 or acc not in iter_args:  # the rewrite carries only the accumulator
        return False
    pos = iter_args.index(acc)
    if not _single_use(acc) or not _single_use(mma.results[0]):
        return False
    yield_op = body.operations[len(body.operations) - 1]
    if list(yield_op.operands)[pos] != mma.results[0]:
        return False
    init = list(loop.operands)[3 + pos]
    cst = init.owner
    if isinstance(cst, ir.Block) or cst.operation.name != "arith.constant":
        return False
    attr = ir.DenseElementsAttr(cst.attributes["value"])
    return attr.is_splat and float(ir.FloatAttr(attr.get_splat_value()).value) == 0.0


def run(module_op, num_warps="4"):
    if int(num_warps) != 4:
        return
    loops = []

    def visit(op):
        if op.name == "scf.for" and _matches(op):
            loops.append(op)
        return ir.WalkResult.ADVANCE
    for f in module_op.regions[0].blocks[0].operations:
        if f.operation.name == "func.func" and "tessera.kernel" in f.attributes:
            f.operation.walk(visit)
    for loop in loops:
        loop.attributes["tessera.wgmma"] = ir.UnitAttr.get()
