"""KernelGen: one @ts.kernel body → a `func.func` of tile IR."""
from __future__ import annotations

import ast

from mlir import ir
from mlir.dialects import arith, func, memref

from ... import dtypes as dt
from ...ir import builders as tb
from .base import Base, INDEX, Val, NeedSpecialisation, mlir_type
from .calls import Calls
from .elementwise import Elementwise
from .exprs import Exprs
from .seed_ops import SeedOps
from .stmts import Stmts


class KernelGen(Base, Elementwise, Exprs, Stmts, Calls, SeedOps):
    def __init__(self, info, spec):
        """info: the parsed function (KernelSource); spec: the Specialisation to compile."""
        super().__init__(info.filename, info.line_offset, info.col_offset, info.source_lines)
        self.info = info
        self.spec = spec
        self.globals = info.globals
        self.closure = info.closure
        self.constexprs = dict(spec.constexprs)
        self.dim_values = dict(spec.dim_values)
        self.spec_dims = frozenset(spec.spec_dims)
        self.dim_owner = {}
        self.loops = []
        self.loop_id = 0
        self.if_depth = 0
        self.returned = False

    def _need(self, dim):
        return NeedSpecialisation({dim})

    def runtime_dim(self, t: Val, i: int, name: str) -> Val:
        if t.kind == "list":   # a dim only a list binds: its first element's size (they all agree)
            return Val("scalar", self.cast(Val("scalar", self.list_entry(t, 0, 1 + i), dt.i64), INDEX).v, INDEX,
                       dims=frozenset({name}))
        c = arith.ConstantOp(ir.IndexType.get(), i).result
        return Val("scalar", memref.DimOp(t.v, c).result, INDEX, dims=frozenset({name}))

    def list_entry(self, t: Val, row, col):
        """An i64 entry of a list's table (runtime.tensor_list: address, sizes, strides per row)."""
        index = ir.IndexType.get()
        r = row.v if isinstance(row, Val) else arith.ConstantOp(index, row).result
        return memref.LoadOp(t.v, [r, arith.ConstantOp(index, col).result]).result

    def list_elements(self, t: Val, node) -> list:
        return [self.list_element(t, i, node) for i in range(t.length)]

    def list_element(self, t: Val, i, node) -> Val:
        """`xs[i]`: a global tensor, for a compile-time or runtime index."""
        if isinstance(i, bool) or not isinstance(i, (int, Val)) or (isinstance(i, Val) and (
                i.kind != "scalar" or not i.dtype.is_int)):
            self.error(node, f"a list of tensors is indexed by an integer, got {i!r}")
        if isinstance(i, int):
            if not -t.length <= i < t.length:
                self.error(node, f"index {i} is out of range for the list '{t.name}' of {t.length} tensors")
            i %= t.length
        idx = self.cast(self.to_val(i, INDEX), INDEX)
        mt = tb.global_type(len(t.shape), mlir_type(t.dtype))
        return Val("tensor", tb.list_get(t.v, idx.v, mt, self.loc(node)), t.dtype, tuple(t.shape),
                   name=f"{t.name}[{i if isinstance(i, int) else '...'}]")

    def generate(self, module: "ir.Module"):
        fdef: ast.FunctionDef = self.info.tree
        arg_types, params = [], []
        for p in self.spec.params:
            if p.kind == "tensor":
                arg_types.append(tb.global_type(len(p.dims), mlir_type(p.dtype)))
            elif p.kind == "tensor_list":   # its table (tessera-lower-tensor-lists)
                arg_types.append(tb.global_type(2, ir.IntegerType.get_signless(64)))
            elif p.kind == "scalar":
                arg_types.append(mlir_type(p.abi_dtype))
            else:
                continue
            params.append(p)
        with ir.InsertionPoint(module.body), self.loc(fdef):
            f = func.FuncOp(self.info.name, (arg_types, []))
            f.attributes["tessera.kernel"] = ir.UnitAttr.get()
            f.attributes["tessera.arg_names"] = ir.ArrayAttr.get([ir.StringAttr.get(p.name) for p in params])
            if any(getattr(p, "tma_ok", False) for p in params):
                f.attributes["tessera.tma_ok"] = ir.ArrayAttr.get([ir.BoolAttr.get(bool(getattr(p, "tma_ok", False)))
                                                                  for p in params])
                f.attributes["tessera.whole_chunks"] = ir.ArrayAttr.get(
                    [ir.BoolAttr.get(bool(getattr(p, "whole_chunks", False))) for p in params])
            if self.spec.index32:
                f.attributes["tessera.index32"] = ir.UnitAttr.get()
            entry = f.add_entry_block()
        with ir.InsertionPoint(entry), self.loc(fdef):
            for p, barg in zip(params, entry.arguments):
                if p.kind == "tensor":
                    v = Val("tensor", barg, p.dtype, tuple(p.dims), name=p.name)
                    for i, d in enumerate(p.dims):
                        if isinstance(d, str) and d not in self.dim_owner:
                            self.dim_owner[d] = (v, i)
                    self.scope[p.name] = v
                elif p.kind == "tensor_list":
                    v = Val("list", barg, p.dtype, tuple(p.dims), name=p.name, length=p.length)
                    for i, d in enumerate(p.dims):
                        if isinstance(d, str) and d not in self.dim_owner:
                            self.dim_owner[d] = (v, i)
                    self.scope[p.name] = v
                else:
                    v = Val("scalar", barg, p.abi_dtype)
                    if p.dtype is INDEX:
                        v = self.cast(v, INDEX)
                    self.scope[p.name] = v
            for name, val in self.constexprs.items():
                self.scope[name] = val
            self.block(fdef.body)
            func.ReturnOp([])
        return f
