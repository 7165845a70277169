"""tessera-tma-shared-address: TMA loads address shared memory with 32-bit shared-window offsets.

Why: MLIR lowers `nvgpu.tma.async.load` to `nvvm.cp.async.bulk.tensor.shared.cluster.global`, whose
destination is an `addrspacecast` of the shared (3) pointer to shared::cluster (7); the pinned LLVM
lowers that cast through the generic space (`cvta.shared.u64` then `cvta.to.shared::cluster.u64`),
and ptxas rebuilds the 64-bit generic address with three moves per copy (the shared window's high
word among them) in front of every `UTMALDG`. A shared::cta offset is a valid shared::cluster
address of the executing CTA (PTX ISA, state spaces), so the copy is emitted as inline PTX with the
32-bit offsets of its destination and its mbarrier, as Triton does.

Runs on the LLVM dialect (the end of the llvm stage). Rewrites only tile-mode copies without
multicast, L2 hint, im2col offsets or predicate, whose destination is such a cast; others stay.
"""
from __future__ import annotations

from mlir import ir
from mlir.dialects import llvm

name = "tessera-tma-shared-address"

_OP = "nvvm.cp.async.bulk.tensor.shared.cluster.global"


def _walk(op):
    for region in op.regions:
        for block in region.blocks:
            for child in block.operations:
                yield child.operation
                yield from _walk(child.operation)


def _plain(op):
    """(destination pointer in space 3, descriptor, coordinates, mbarrier) of a rewritable copy."""
    seg = list(ir.DenseI32ArrayAttr(op.attributes["operandSegmentSizes"]))
    if len(seg) < 4 or any(seg[4:]) or seg[0] != 1 or seg[1] != 1 or seg[3] != 1 or not 1 <= seg[2] <= 5:
        return None
    if "tile" not in str(op.attributes["mode"]):
        return None
    ops = list(op.operands)
    dst, desc, coords, bar = ops[0], ops[1], ops[2:2 + seg[2]], ops[2 + seg[2]]
    cast = dst.owner
    if isinstance(cast, ir.Block) or cast.name != "llvm.addrspacecast" or str(cast.operands[0].type) != "!llvm.ptr<3>":
        return None
    return cast.operands[0], desc, coords, bar


def run(module_op):
    i32 = ir.IntegerType.get_signless(32)
    for op in [o for o in _walk(module_op) if o.name == _OP]:
        found = _plain(op)
        if found is None:
            continue
        dst, desc, coords, bar = found
        cast = op.operands[0].owner
        with ir.InsertionPoint(op), op.location:
            shared = [llvm.PtrToIntOp(i32, p).result for p in (dst, bar)]
            n = len(coords)
            box = ", ".join(f"${2 + i}" for i in range(n))
            text = (f"cp.async.bulk.tensor.{n}d.shared::cluster.global.tile.mbarrier::complete_tx::bytes "
                    f"[$0], [$1, {{{box}}}], [${2 + n}];")
            llvm.InlineAsmOp(None, [shared[0], desc, *coords, shared[1]], text, "r,l," + "r," * n + "r",
                             has_side_effects=True)
        op.erase()
        if not list(cast.results[0].uses):
            cast.erase()
