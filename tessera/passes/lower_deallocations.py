"""tessera-lower-deallocations: `bufferization.dealloc` → pointer compares + `memref.dealloc`.

Why: upstream `bufferization-lower-deallocations` lowers a dealloc of several memrefs through a
helper that stores i1 flags into a `memref<?xi1>`, and `finalize-memref-to-llvm` in the pinned
LLVM 22.1 asserts (aborting the process) on stores narrower than 8 bits. This pass lowers every
`bufferization.dealloc` inline with scalar i1 logic instead, with the op's exact semantics:
a memref is freed iff its condition holds, no earlier freed operand has the same base pointer,
and no retained memref has it; each retained value's updated ownership is the OR of the
conditions of the operands that alias it. Runs after ownership-based deallocation.
"""
from __future__ import annotations

from mlir import ir
from mlir.dialects import arith, memref, scf

from ..ir.builders import ops_named

name = "tessera-lower-deallocations"


def _base_ptr(m):
    md = memref.ExtractStridedMetadataOp(m)
    base = md.results[0]
    return base, memref.ExtractAlignedPointerAsIndexOp(base).result


def _lower(op):
    n_mem = list(ir.DenseI32ArrayAttr(op.attributes["operandSegmentSizes"]))
    ops = list(op.operands)
    mems = ops[:n_mem[0]]
    conds = ops[n_mem[0]:n_mem[0] + n_mem[1]]
    retained = ops[n_mem[0] + n_mem[1]:]
    i1 = ir.IntegerType.get_signless(1)
    true = arith.ConstantOp(i1, 1).result
    false = arith.ConstantOp(i1, 0).result
    bases = [_base_ptr(m) for m in mems]
    rptrs = [_base_ptr(r)[1] for r in retained]
    for i, ((base, p), c) in enumerate(zip(bases, conds)):
        free = c
        for k in range(i):
            same = arith.CmpIOp(arith.CmpIPredicate.eq, bases[k][1], p).result
            earlier = arith.AndIOp(conds[k], same).result
            free = arith.AndIOp(free, arith.XOrIOp(earlier, true).result).result
        for q in rptrs:
            free = arith.AndIOp(free, arith.CmpIOp(arith.CmpIPredicate.ne, p, q).result).result
        ifop = scf.IfOp(free, [], has_else=False)
        with ir.InsertionPoint(ifop.then_block):
            memref.DeallocOp(base)
            scf.YieldOp([])
    results = []
    for q in rptrs:
        own = false
        for (base, p), c in zip(bases, conds):
            own = arith.OrIOp(own, arith.AndIOp(c, arith.CmpIOp(arith.CmpIPredicate.eq, p, q).result).result).result
        results.append(own)
    for r, new in zip(op.results, results):
        r.replace_all_uses_with(new)
    op.erase()


def run(module_op):
    for op in ops_named(module_op, "bufferization.dealloc"):
        with ir.InsertionPoint(op), op.location:
            _lower(op)
