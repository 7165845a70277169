"""Defined integer division for both backends: `//` and `%` of tiles and scalars never reach an
undefined `sdiv`/`srem`.

Why: LLVM's signed division and remainder by zero, and INT_MIN / -1, are undefined behaviour; on x86
they raise SIGFPE, which killed the Python process running a CPU kernel, and on NVIDIA the optimiser
may assume they do not happen. Each lowering (`tessera-lower-tile-to-cpu`, `tessera-lower-tile-to-gpu`)
runs `guard` on a kernel's tile IR first: the divisor becomes 1 where it is 0 (or -1 with a dividend
of INT_MIN, or -1 for a remainder), and selects give the documented results (docs/guide.md, "Integer
division"), the ones PTX's `div`/`rem` give:

    x // 0 == -1        x % 0 == x        INT_MIN // -1 == INT_MIN (wraps)        INT_MIN % -1 == 0

The CPU lowering also passes a `record` callback: it stores the fault's code in a flag the runner reads
after the launch, which then raises a LaunchError at the division's line. A divisor known at compile
time to be neither 0 nor -1 (`x // 4`) is left alone.
"""
from __future__ import annotations

from mlir import ir
from mlir.dialects import arith

from ..ir.builders import known_int

_QUOTIENTS = ("arith.floordivsi", "arith.divsi", "arith.ceildivsi")
_REMAINDERS = ("arith.remsi",)


def _elem(t):
    return t.element_type if isinstance(t, ir.RankedTensorType) else t


def _width(et) -> int:
    return 64 if isinstance(et, ir.IndexType) else ir.IntegerType(et).width


def _const(t, value):
    """`value` as a constant of type `t` (a scalar, or a splat tile of its shape)."""
    if isinstance(t, ir.RankedTensorType):
        attr = ir.IntegerAttr.get(t.element_type, value)
        return arith.ConstantOp(t, ir.DenseElementsAttr.get_splat(t, attr)).result
    return arith.ConstantOp(t, ir.IntegerAttr.get(t, value)).result


def _eq(x, value):
    return arith.CmpIOp(arith.CmpIPredicate.eq, x, _const(x.type, value)).result


def faulting_ops(root):
    """The signed divisions and remainders under `root` whose divisor may be 0 or -1."""
    found = []

    def visit(op):
        if op.name in _QUOTIENTS + _REMAINDERS and known_int(op.operands[1]) in (None, 0, -1):
            found.append(op)
        return ir.WalkResult.ADVANCE
    root.walk(visit)
    return found


def guard(root, record=None):
    """Rewrite the divisions of `root` (see the module docstring). `record(cond, kind, op)` is called,
    before the division, with each i1 condition (a scalar, or a tile of the division's shape) under which
    it faults: kind "zero" (division or remainder by zero) or "overflow" (INT_MIN // -1)."""
    for op in faulting_ops(root):
        a, b = op.operands[0], op.operands[1]
        res = op.results[0]
        int_min = -(1 << (_width(_elem(b.type)) - 1))
        quotient = op.name in _QUOTIENTS
        with ir.InsertionPoint(op), op.location:
            zero = _eq(b, 0)
            minus_one = _eq(b, -1)
            if quotient:
                overflow = arith.AndIOp(_eq(a, int_min), minus_one).result
                unsafe = arith.OrIOp(zero, overflow).result
            else:   # x % -1 == 0 == x % 1, with no INT_MIN % -1 trap
                unsafe = arith.OrIOp(zero, minus_one).result
            if record is not None:
                record(zero, "zero", op)
                if quotient:
                    record(overflow, "overflow", op)
            op.operands[1] = arith.SelectOp(unsafe, _const(b.type, 1), b).result
        with ir.InsertionPoint.after(op), op.location:
            fixed = arith.SelectOp(zero, _const(res.type, -1) if quotient else a, res)
        res.replace_all_uses_except(fixed.result, fixed.operation)


def describe(kind: str, op) -> str:
    """What a recorded fault of division `op` was, for the error the CPU runner raises."""
    if kind == "overflow":
        bits = _width(_elem(op.operands[0].type))
        return f"integer overflow: {-(1 << (bits - 1))} // -1 does not fit i{bits}"
    return "integer division by zero" if op.name in _QUOTIENTS else "integer modulo by zero"
