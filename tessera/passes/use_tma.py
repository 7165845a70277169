"""tessera-use-tma: mark the tile loads that can be TMA bulk-tensor copies on sm_90a.

A `tile.load` qualifies (gets the `tessera.tma` unit attribute) when it reads a rank-2 window of a
rank-2 kernel argument with nothing squeezed, without mask/other, its element type is 16-bit, its
inner extent is a multiple of 8 elements up to 256 (whole 16-byte chunks; the copies are 64-column
boxes, one 128-byte swizzle row each), its outer extent is at most 256 (the TMA box limit), and the kernel was specialised on that argument being TMA-compatible (`tessera.tma_ok` on
the function, one bool per argument: unit inner stride, 16-byte aligned base and strides).
The loads stay tile.load; `tessera-use-wgmma` and `tessera-lower-tile-to-gpu` act on the mark.
"""
from __future__ import annotations

from mlir import ir

from ..ir import builders as tb

name = "tessera-use-tma"


def eligible(load_op, tma_ok) -> bool:
    src, mask, other = tb.operands(load_op)
    if mask is not None or other is not None or not tb.is_window(src.type):
        return False
    view = src.owner
    if view.name != "tile.view":
        return False
    base = view.operands[0]
    if not isinstance(base.owner, ir.Block) or base.owner.owner.operation.name != "func.func":
        return False
    arg_no = base.arg_number
    if arg_no >= len(tma_ok) or not tma_ok[arg_no]:
        return False
    squeeze = list(ir.DenseI64ArrayAttr(view.attributes["squeeze"]))
    shape, elem = tb.window_shape_elem(src.type)
    if len(shape) != 2 or any(squeeze) or ir.MemRefType(base.type).rank != 2:
        return False
    if str(elem) not in ("bf16", "f16"):
        return False
    return shape[1] % 8 == 0 and shape[1] <= 256 and 0 < shape[0] <= 256


def run(module_op):
    for f in module_op.regions[0].blocks[0].operations:
        if f.operation.name != "func.func" or "tessera.kernel" not in f.attributes:
            continue
        tma_ok = [bool(ir.BoolAttr(a).value) for a in ir.ArrayAttr(f.attributes["tessera.tma_ok"])] \
            if "tessera.tma_ok" in f.attributes else []

        def visit(op):
            if op.name == "tile.load" and eligible(op, tma_ok):
                op.attributes["tessera.tma"] = ir.UnitAttr.get()
            return ir.WalkResult.ADVANCE
        f.operation.walk(visit)
