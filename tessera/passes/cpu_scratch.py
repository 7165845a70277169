"""tessera-cpu-scratch: a program's tile buffers become views of one scratch buffer its launcher allocates.

Why: bufferization gives every tile of a CPU program (loaded tiles, elementwise results, accumulators)
a `memref.alloc`, freed by the deallocation passes at the program's end: a malloc and a free per tile
per program, a sizeable share of a small kernel's time, and cold memory for each program's tiles.
What it does: in each program function called from a launch entry (`<name>_grid`, `<name>_range`:
functions with `llvm.emit_c_interface`), the static, row-major allocations of the function's entry
block (where `buffer-hoisting` and `buffer-loop-hoisting` have moved them) are packed, 64-byte aligned,
into one `memref<N x i8>` scratch argument and replaced by `memref.view`s of it. Every caller gets
one allocation of the scratch at its entry, freed at its end by the ownership-based deallocation that
follows, so a launch (or each thread's share of it) allocates once however many programs it runs,
and the programs reuse the same, cache-warm memory. More than CPU_SCRATCH_BUDGET bytes of tile
buffers per program is an OutOfResources at the first allocation past it: a tile that large is a
mistake on a CPU (the GPU's limits are far smaller).
Assumes: bufferized IR without deallocations yet (runs after the hoisting passes, before
`ownership-based-buffer-deallocation`); allocations with dynamic sizes or inside regions stay on the heap.
"""
from __future__ import annotations

from mlir import ir
from mlir.dialects import arith, memref

from ..errors import OutOfResources
from ..ir.locations import error_at

name = "tessera-cpu-scratch"
CPU_SCRATCH_BUDGET = 64 << 20
ALIGN = 64


def _bytes(t):
    n = 1
    for d in t.shape:
        n *= d
    return n * max(1, (getattr(t.element_type, "width", 32) + 7) // 8)


def _movable(op):
    t = ir.MemRefType(op.results[0].type)
    if len(op.operands) or any(ir.ShapedType.is_dynamic_size(d) for d in t.shape):
        return False
    if str(t.memory_space) not in ("None", ""):
        return False
    return "affine_map" not in str(t.layout) or str(t.layout) == \
        "affine_map<({0}) -> ({0})>".format(", ".join(f"d{i}" for i in range(len(t.shape))))


def _callers(module_op):
    """{callee name: [func.call ops in launch entries]}"""
    calls = {}
    for f in module_op.regions[0].blocks[0].operations:
        if f.operation.name != "func.func" or "llvm.emit_c_interface" not in f.attributes:
            continue

        def visit(op):
            if op.name == "func.call":
                calls.setdefault(ir.FlatSymbolRefAttr(op.attributes["callee"]).value, []).append(op)
            return ir.WalkResult.ADVANCE
        f.operation.walk(visit)
    return calls


def _pack(f):
    """Replace f's movable entry-block allocations with views of a new i8 scratch argument; its size."""
    entry = f.regions[0].blocks[0]
    allocs = [op for op in entry.operations if op.operation.name == "memref.alloc" and _movable(op.operation)]
    if not allocs:
        return 0
    i8 = ir.IntegerType.get_signless(8)
    scratch_t = ir.MemRefType.get([ir.ShapedType.get_dynamic_size()], i8)
    scratch = entry.add_argument(scratch_t, f.location)
    ft = ir.FunctionType(ir.TypeAttr(f.attributes["function_type"]).value)
    f.attributes["function_type"] = ir.TypeAttr.get(ir.FunctionType.get(list(ft.inputs) + [scratch_t],
                                                                        list(ft.results)))
    offset = 0
    for op in allocs:
        t = ir.MemRefType(op.results[0].type)
        size = _bytes(t)
        if offset + size > CPU_SCRATCH_BUDGET:
            raise error_at(op.location, f"tile buffers: a program of this kernel needs more than "
                           f"{CPU_SCRATCH_BUDGET} bytes of tiles (this {list(t.shape)} {t.element_type} tile "
                           f"brings it to {offset + size}); the CPU backend's budget is {CPU_SCRATCH_BUDGET} bytes",
                           OutOfResources, required=offset + size, budget=CPU_SCRATCH_BUDGET,
                           resource="CPU tile buffers", suggestion="smaller tiles (BLOCK constexprs)")
        with ir.InsertionPoint(op), op.location:
            off = arith.ConstantOp(ir.IndexType.get(), offset).result
            view = memref.ViewOp(t, scratch, off, []).result
        op.results[0].replace_all_uses_with(view)
        op.operation.erase()
        offset += (size + ALIGN - 1) // ALIGN * ALIGN
    return max(offset, ALIGN)


def run(module_op):
    calls = _callers(module_op)
    funcs = {ir.StringAttr(f.attributes["sym_name"]).value: f for f in module_op.regions[0].blocks[0].operations
             if f.operation.name == "func.func"}
    for callee, sites in calls.items():
        f = funcs.get(callee)
        if f is None or not f.regions[0].blocks or "llvm.emit_c_interface" in f.attributes:
            continue   # (an entry calling another entry, `_grid` → `_range`: its signature is the ABI)
        size = _pack(f)
        if not size:
            continue
        i8 = ir.IntegerType.get_signless(8)
        for call in sites:
            caller = call.parent
            while caller.name != "func.func":
                caller = caller.parent
            entry = caller.regions[0].blocks[0]
            with ir.InsertionPoint.at_block_begin(entry), call.location:
                buf = memref.AllocOp(ir.MemRefType.get([size], i8), [], [],
                                     alignment=ir.IntegerAttr.get(ir.IntegerType.get_signless(64), ALIGN)).result
                dyn = memref.CastOp(ir.MemRefType.get([ir.ShapedType.get_dynamic_size()], i8), buf).result
            new_operands = list(call.operands) + [dyn]
            with ir.InsertionPoint(call), call.location:
                new = ir.Operation.create("func.call", results=[r.type for r in call.results], operands=new_operands,
                                          attributes={k: call.attributes[k] for k in call.attributes})
            for old_r, new_r in zip(call.results, new.results):
                old_r.replace_all_uses_with(new_r)
            call.erase()
