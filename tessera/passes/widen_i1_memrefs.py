"""tessera-widen-i1-memrefs: store booleans in memory as i8.

Why: `finalize-memref-to-llvm` of the pinned LLVM 22.1 asserts (aborting the process) on loads and
stores of element types narrower than 8 bits, and bool tiles (masks, comparisons) bufferize to
`memref<...xi1>`. This pass retypes every `memref<...xi1>` value (op results, block arguments,
function signatures) to `memref<...xi8>`, zero-extends values stored into them and truncates
values loaded from them. NumPy stores bool as one byte, so the kernel ABI is unchanged.
Runs after bufferization and `convert-linalg-to-loops`, before `finalize-memref-to-llvm`.
"""
from __future__ import annotations

import numpy as np
from mlir import ir
from mlir.dialects import arith

name = "tessera-widen-i1-memrefs"


def _is_i1(t):
    return isinstance(t, ir.IntegerType) and t.width == 1


def _widen(t):
    if not isinstance(t, ir.MemRefType) or not _is_i1(t.element_type):
        return None
    mt = t
    return ir.MemRefType.get(list(mt.shape), ir.IntegerType.get_signless(8), layout=mt.layout,
                             memory_space=mt.memory_space)


def run(module_op):
    loads, stores, funcs, globals_ = [], [], [], []

    def visit(op):
        for r in op.results:
            w = _widen(r.type)
            if w is not None:
                r.set_type(w)
        for region in op.regions:
            for block in region.blocks:
                for a in block.arguments:
                    w = _widen(a.type)
                    if w is not None:
                        a.set_type(w)
        if op.name == "memref.global":
            globals_.append(op)
        elif op.name == "memref.load":
            loads.append(op)
        elif op.name == "memref.store":
            stores.append(op)
        elif op.name == "func.func":
            funcs.append(op)
        return ir.WalkResult.ADVANCE
    module_op.walk(visit)
    i1, i8 = ir.IntegerType.get_signless(1), ir.IntegerType.get_signless(8)
    for op in loads:
        if _widen_elem(op.operands[0].type) and _is_i1(op.results[0].type):
            res = op.results[0]
            res.set_type(i8)
            with ir.InsertionPoint.after(op), op.location:
                t = arith.TruncIOp(i1, res)
            res.replace_all_uses_except(t.result, t.operation)
    for op in stores:
        v = op.operands[0]
        if _widen_elem(op.operands[1].type) and _is_i1(v.type):
            with ir.InsertionPoint(op), op.location:
                e = arith.ExtUIOp(i8, v)
            op.operands[0] = e.result
    for g in globals_:
        _widen_global(g)
    for f in funcs:
        ft = ir.FunctionType(ir.TypeAttr(f.attributes["function_type"]).value)
        ins = [_widen(t) or t for t in ft.inputs]
        outs = [_widen(t) or t for t in ft.results]
        f.attributes["function_type"] = ir.TypeAttr.get(ir.FunctionType.get(ins, outs))


def _widen_elem(t):
    return isinstance(t, ir.MemRefType) and isinstance(t.element_type, ir.IntegerType) and t.element_type.width == 8


def _widen_global(g):
    """A `memref.global` of i1 (a folded bool tile): its type and its initial value as i8."""
    w = _widen(ir.TypeAttr(g.attributes["type"]).value)
    if w is None:
        return
    g.attributes["type"] = ir.TypeAttr.get(w)
    if "initial_value" not in g.attributes or not isinstance(g.attributes["initial_value"], ir.DenseElementsAttr):
        return
    init = ir.DenseIntElementsAttr(g.attributes["initial_value"])
    tt = ir.RankedTensorType.get(list(w.shape), w.element_type)
    if init.is_splat:
        bit = int(bool(ir.IntegerAttr(init.get_splat_value()).value))
        new = ir.DenseElementsAttr.get_splat(tt, ir.IntegerAttr.get(w.element_type, bit))
    else:
        new = ir.DenseElementsAttr.get(np.array([int(bool(v)) for v in init], np.int8).reshape(list(w.shape)), type=tt)
    g.attributes["initial_value"] = new
