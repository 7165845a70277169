"""Small helpers shared by the NVIDIA lowering modules (no MLIR state of their own)."""
from __future__ import annotations

from mlir import ir
from mlir.dialects import arith


def elem_bytes(t) -> int:
    """Bytes of an element type (1 for i1 and other sub-byte types)."""
    if isinstance(t, ir.IntegerType):
        return max(1, t.width // 8)
    return {"f32": 4, "f16": 2, "bf16": 2, "f64": 8}.get(str(t), 1)


def align(x: int, a: int = 128) -> int:
    return (x + a - 1) // a * a


def arg_number(v):
    """The kernel argument a global tensor value is, or None."""
    if isinstance(v, ir.BlockArgument):
        return v.arg_number
    try:
        return ir.BlockArgument(v).arg_number
    except (ValueError, TypeError):
        return None


def next_slot(slot, stages):
    """(slot + 1 wrapped to 0 at `stages`, whether it wrapped): a pipeline's slot counter carried by its
    loop, in the form tessera-narrow-index bounds (`up = slot + 1; up == stages ? 0 : up`)."""
    index = ir.IndexType.get()
    up = arith.AddIOp(slot, arith.ConstantOp(index, 1).result).result
    wrap = arith.CmpIOp(arith.CmpIPredicate.eq, up, arith.ConstantOp(index, stages).result).result
    return arith.SelectOp(wrap, arith.ConstantOp(index, 0).result, up).result, wrap
