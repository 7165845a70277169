"""tessera-use-wgmma{num_warps=4}: mark K loops whose tile.mma can run as Hopper warpgroup MMA.

The loop gets `tessera.wgmma` when it is a K loop (`k_loops.match`: one tile.mma of two plain
window loads, the accumulator the only loop-carried value) whose loads are TMA-marked
(`tessera-use-tma`) 128×64 A and 64×128 B tiles of the same 16-bit type, whose accumulator starts as
zeros, and the CTA is one warpgroup (num_warps=4). `tessera-lower-tile-to-gpu{arch=sm_90a}` then
lowers the loop to TMA loads into `num_stages` shared-memory slots with mbarriers and
`wgmma.mma_async`.
"""
from __future__ import annotations

from mlir import ir

from . import k_loops

name = "tessera-use-wgmma"


def _matches(loop) -> bool:
    found = k_loops.match(loop)
    if found is None or k_loops.splat_init(loop) != 0.0:
        return False
    _, a_ld, b_ld = found
    for ld, shape in ((a_ld, [128, 64]), (b_ld, [64, 128])):
        if "tessera.tma" not in ld.attributes or list(ir.RankedTensorType(ld.results[0].type).shape) != shape:
            return False
    return str(ir.RankedTensorType(a_ld.results[0].type).element_type) == \
        str(ir.RankedTensorType(b_ld.results[0].type).element_type)


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
