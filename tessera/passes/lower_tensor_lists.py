"""tessera-lower-tensor-lists: element i of a tensor list → the memref descriptor in row i of its table.

A `list[tile.Tensor]` kernel parameter is one rank-2 `memref<N x (1 + 2r) x i64>` argument (DESIGN §4):
row i holds element i's address, its r sizes and its r strides in elements, as every launcher writes
it (a device array on NVIDIA, host memory on the CPU). `tile.list_get(table, i)` loads the row and
builds the LLVM memref descriptor {address, address, 0, sizes, strides}, cast to the memref type with
`builtin.unrealized_conversion_cast`; `finalize-memref-to-llvm` / `convert-gpu-to-nvvm` see the
descriptor behind the cast and `reconcile-unrealized-casts` removes the pair. Everything downstream
treats the element as any strided global tensor (bounds checks, views, vector accesses by stride
class do not apply: the element is of the general stride class).

Runs after the tile lowering of either backend, before bufferization (CPU) or the NVVM conversion.
The index is not bounds-checked: `for i in tile.range(len(xs))` keeps it in range.
"""
from __future__ import annotations

from mlir import ir
from mlir.dialects import arith, llvm, memref

from ..ir.builders import ops_named

name = "tessera-lower-tensor-lists"


def _lower(op):
    table, index = op.operands[0], op.operands[1]
    rt = ir.MemRefType(op.results[0].type)
    rank = rt.rank
    i64 = ir.IntegerType.get_signless(64)
    ptr = ir.Type.parse("!llvm.ptr")
    desc_t = ir.Type.parse(f"!llvm.struct<(ptr, ptr, i64, array<{rank} x i64>, array<{rank} x i64>)>")
    with ir.InsertionPoint(op), op.location:
        def col(c):
            return memref.LoadOp(table, [index, arith.ConstantOp(ir.IndexType.get(), c).result]).result
        address = llvm.IntToPtrOp(ptr, col(0)).result
        d = llvm.UndefOp(desc_t).result
        d = llvm.InsertValueOp(d, address, [0]).result
        d = llvm.InsertValueOp(d, address, [1]).result
        d = llvm.InsertValueOp(d, arith.ConstantOp(i64, 0).result, [2]).result
        for j in range(rank):
            d = llvm.InsertValueOp(d, col(1 + j), [3, j]).result
            d = llvm.InsertValueOp(d, col(1 + rank + j), [4, j]).result
        cast = ir.Operation.create("builtin.unrealized_conversion_cast", results=[rt], operands=[d])
    op.results[0].replace_all_uses_with(cast.results[0])
    op.erase()


def run(module_op):
    for op in ops_named(module_op, "tile.list_get"):
        _lower(op)
