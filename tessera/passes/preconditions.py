"""Checks run just before upstream passes that abort (an assertion, not an error) on IR they do not
handle. The registry inserts the check in front of the pass wherever a pipeline names it, so bad IR
gets a located error instead of killing the process. One entry per known abort of the pinned MLIR.
"""
from __future__ import annotations

from mlir import ir

from ..ir.locations import error_at

_ACCESS = ("memref.load", "memref.store", "memref.atomic_rmw", "memref.generic_atomic_rmw")


def _narrow_memref_access(module_op):
    """finalize-memref-to-llvm asserts `integralElementType.getWidth() >= 8` on loads and stores of
    memrefs with sub-byte integer elements (tessera-widen-i1-memrefs widens i1 first)."""
    bad = []

    def visit(op):
        if op.name in _ACCESS and not bad:
            for v in op.operands:
                t = v.type
                if isinstance(t, ir.MemRefType) and isinstance(t.element_type, ir.IntegerType) \
                        and t.element_type.width < 8:
                    bad.append((op, t))
                    return ir.WalkResult.INTERRUPT
        return ir.WalkResult.ADVANCE
    module_op.walk(visit)
    if bad:
        op, t = bad[0]
        raise error_at(op.location, f"finalize-memref-to-llvm cannot lower '{op.name}' on {t} (elements narrower "
                                    "than 8 bits abort inside MLIR); widen them first, e.g. with "
                                    "tessera-widen-i1-memrefs")


CHECKS = {
    "finalize-memref-to-llvm": _narrow_memref_access,
}


def needed(element) -> list:
    """The checks an upstream pipeline element needs (its nested passes included)."""
    found, todo = [], [element]
    while todo:
        e = todo.pop()
        if e.name in CHECKS and CHECKS[e.name] not in found:
            found.append(CHECKS[e.name])
        todo.extend(e.nested or ())
    return found
