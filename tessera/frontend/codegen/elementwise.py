"""Typed elementwise arithmetic on scalars and tiles: promotion, casts, broadcasting."""
from __future__ import annotations

import math
import operator

from mlir import ir
from mlir.dialects import arith, math as mmath, tensor

from ... import dtypes as dt
from ...ir import builders as tb
from .base import INDEX, Val, mlir_type, NeedSpecialisation

PY_BINOPS = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "truediv": operator.truediv,
             "floordiv": operator.floordiv, "mod": operator.mod, "pow": operator.pow,
             "and": operator.and_, "or": operator.or_, "xor": operator.xor,
             "lshift": operator.lshift, "rshift": operator.rshift,
             "max": max, "min": min,
             "lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge,
             "eq": operator.eq, "ne": operator.ne}
CMP = {"lt", "le", "gt", "ge", "eq", "ne"}
_CMPF = {"lt": "olt", "le": "ole", "gt": "ogt", "ge": "oge", "eq": "oeq", "ne": "une"}
_CMPI = {"lt": "slt", "le": "sle", "gt": "sgt", "ge": "sge", "eq": "eq", "ne": "ne"}


def is_runtime(x) -> bool:
    return isinstance(x, Val)


def broadcast_shapes(a, b):
    ra, rb = list(a), list(b)
    n = max(len(ra), len(rb))
    ra = [1] * (n - len(ra)) + ra
    rb = [1] * (n - len(rb)) + rb
    out = []
    for x, y in zip(ra, rb):
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            return None
    return tuple(out)


class Elementwise:
    # -- constants -------------------------------------------------------------------------
    def check_fits(self, value, dtype: dt.DType):
        """A Python int constant must fit its integer type (no silent wrap-around, as NumPy 2 refuses too)."""
        if dtype.is_float or dtype is dt.bool_ or isinstance(value, (bool, float)):
            return
        bits = 64 if dtype is INDEX else dtype.bits
        lo, hi = (-(1 << (bits - 1)), (1 << bits) - 1) if bits > 1 else (0, 1)   # signless: either reading
        if not lo <= int(value) <= hi:
            self.error(None, f"the constant {value} does not fit {dtype.name} ({lo} to {hi})")

    def _const_attr(self, value, dtype: dt.DType):
        self.check_fits(value, dtype)
        t = mlir_type(dtype)
        if dtype.is_float:
            return t, ir.FloatAttr.get(t, float(value))
        if dtype is dt.bool_:   # NumPy's bool(2): nonzero is True (an i1 attribute would keep the low bit)
            value = bool(value)
        return t, ir.IntegerAttr.get(t, int(value))

    def const(self, value, dtype: dt.DType) -> Val:
        t, attr = self._const_attr(value, dtype)
        return Val("scalar", arith.ConstantOp(t, attr).result, dtype)

    def splat_const(self, value, dtype, shape) -> Val:
        t, attr = self._const_attr(value, dtype)
        tt = ir.RankedTensorType.get(list(shape), t)
        return Val("tile", arith.ConstantOp(tt, ir.DenseElementsAttr.get_splat(tt, attr)).result, dtype, tuple(shape))

    def py_dtype(self, x) -> dt.DType:
        if isinstance(x, bool):
            return dt.bool_
        if isinstance(x, int):
            return INDEX
        if isinstance(x, float):
            return dt.f32
        self.error(None, f"expected a number or a tile, got {type(x).__name__} {x!r}")

    def to_val(self, x, dtype: dt.DType | None = None) -> Val:
        """Python number or Val → Val (shared buffers are read as tiles)."""
        if isinstance(x, Val):
            if x.kind == "shared":
                return self.read_shared(x)
            if x.kind == "sview":
                return self.read_sview(x, self.current_node())
            if x.kind == "list":
                self.error(None, f"a list of tensors cannot be used as a value: index it ({x.name}[i]) and load")
            if x.kind in ("tensor", "view"):
                self.error(None, f"a {'global tensor' if x.kind == 'tensor' else 'view'} cannot be used as a value here: load it first with tile.load(...)")
            return x
        d = dtype or self.py_dtype(x)
        return self.const(x, d)

    # -- casts -----------------------------------------------------------------------------
    def cast(self, x: Val, to: dt.DType) -> Val:
        x = self.to_val(x, to)
        fr = x.dtype
        if fr is to or fr.mlir == to.mlir:
            return x
        rt = mlir_type(to)
        if x.kind == "tile":
            rt = ir.RankedTensorType.get(list(x.shape), rt)
        v = x.v
        if fr is INDEX or to is INDEX:
            if fr is INDEX and to.is_float:
                i64t = ir.IntegerType.get_signless(64)
                mid = arith.IndexCastOp(ir.RankedTensorType.get(list(x.shape), i64t) if x.kind == "tile" else i64t, v).result
                r = arith.SIToFPOp(rt, mid).result
            elif to is INDEX and fr.is_float:
                i64t = ir.IntegerType.get_signless(64)
                mid = arith.FPToSIOp(ir.RankedTensorType.get(list(x.shape), i64t) if x.kind == "tile" else i64t, v).result
                r = arith.IndexCastOp(rt, mid).result
            elif fr is dt.bool_:
                r = arith.IndexCastUIOp(rt, v).result
            elif to is dt.bool_:   # != 0, as every other cast to bool (a truncation keeps the low bit)
                zero = self.broadcast_like(self.const(0, fr), x)
                r = arith.CmpIOp(arith.CmpIPredicate.ne, v, zero.v).result
            else:
                r = arith.IndexCastOp(rt, v).result
        elif fr.is_float and to.is_float:
            r = (arith.ExtFOp(rt, v) if to.bits > fr.bits else arith.TruncFOp(rt, v)).result
        elif fr.is_float and to is dt.bool_:
            zero = self.broadcast_like(self.const(0.0, fr), x)
            r = arith.CmpFOp(arith.CmpFPredicate.UNE, v, zero.v).result
        elif fr.is_float:
            r = arith.FPToSIOp(rt, v).result
        elif to.is_float:
            r = (arith.UIToFPOp(rt, v) if fr is dt.bool_ else arith.SIToFPOp(rt, v)).result
        elif to is dt.bool_:
            zero = self.broadcast_like(self.const(0, fr), x)
            r = arith.CmpIOp(arith.CmpIPredicate.ne, v, zero.v).result
        elif to.bits > fr.bits:
            r = (arith.ExtUIOp(rt, v) if fr is dt.bool_ else arith.ExtSIOp(rt, v)).result
        else:
            r = arith.TruncIOp(rt, v).result
        return Val(x.kind, r, to, x.shape, x.dims)

    # -- broadcasting ----------------------------------------------------------------------
    def broadcast_to(self, x: Val, shape) -> Val:
        shape = tuple(shape)
        if x.kind == "tile" and x.shape == shape:
            return x
        if x.kind == "tile":
            if broadcast_shapes(x.shape, shape) != shape:
                self.error(None, f"cannot broadcast a tile of shape {list(x.shape)} to {list(shape)}")
            if len(x.shape) > len(shape):
                self.error(None, f"cannot broadcast a tile of shape {list(x.shape)} to {list(shape)}")
        if not shape:
            return x
        rt = ir.RankedTensorType.get(list(shape), mlir_type(x.dtype))
        return Val("tile", tb.broadcast(x.v, rt), x.dtype, shape)

    def broadcast_like(self, x: Val, like: Val) -> Val:
        return self.broadcast_to(x, like.shape) if like.kind == "tile" else x

    def unify(self, a, b, node, op=""):
        """Both operands as Vals of one dtype and one shape."""
        if not is_runtime(a) and not is_runtime(b):
            raise AssertionError("python operands are folded by the caller")
        if is_runtime(a) and a.kind == "shared":
            a = self.read_shared(a)
        if is_runtime(b) and b.kind == "shared":
            b = self.read_shared(b)
        for x in (a, b):
            if is_runtime(x) and x.kind in ("tensor", "view"):
                self.error(node, f"operator '{op}' on a {'global tensor' if x.kind == 'tensor' else 'view'}: load it first with tile.load(...)")
        if not is_runtime(a):
            a = self.to_val(a, self._py_operand_dtype(a, b.dtype))
        if not is_runtime(b):
            b = self.to_val(b, self._py_operand_dtype(b, a.dtype))
        d = self.promote(a.dtype, b.dtype)
        a, b = self.cast(a, d), self.cast(b, d)
        if a.kind == "tile" or b.kind == "tile":
            sa = a.shape if a.kind == "tile" else ()
            sb = b.shape if b.kind == "tile" else ()
            shape = broadcast_shapes(sa, sb)
            if shape is None:
                self.error(node, f"operator '{op}': tile shapes {list(sa)} and {list(sb)} do not broadcast")
            a, b = self.broadcast_to(a, shape), self.broadcast_to(b, shape)
        return a, b

    def _py_operand_dtype(self, x, other: dt.DType) -> dt.DType:
        if isinstance(x, bool):
            return other
        if isinstance(x, int):
            if other is dt.bool_:   # Triton's rule (NumPy too, in int64): the bool is counted, not the int cut
                return dt.i32 if -(1 << 31) <= x < (1 << 31) else dt.i64
            return other
        if isinstance(x, float):
            return other if other.is_float else dt.f32
        self.error(None, f"unsupported operand {x!r}")

    def promote(self, a: dt.DType, b: dt.DType) -> dt.DType:
        if a is b:
            return a
        if a is INDEX:
            return b if b.is_float or b is not dt.bool_ else INDEX
        if b is INDEX:
            return a if a.is_float or a is not dt.bool_ else INDEX
        return dt.promote(a, b)

    # -- binary / unary ops ----------------------------------------------------------------
    def binop(self, op: str, a, b, node=None):
        if not is_runtime(a) and not is_runtime(b):
            try:
                return PY_BINOPS[op](a, b)
            except Exception as e:  # noqa: BLE001 - report the user's arithmetic error at their line
                self.error(node, f"{type(e).__name__}: {e}")
        dims = (a.dims if is_runtime(a) else frozenset()) | (b.dims if is_runtime(b) else frozenset())
        if op == "truediv":
            a, b = self.unify(a, b, node, "/")
            if not a.dtype.is_float:
                a, b = self.cast(a, dt.f32), self.cast(b, dt.f32)
        elif op == "pow":
            if not is_runtime(b) and b == 2:
                return self.binop("mul", a, a, node)
            a, b = self.unify(a, b, node, "**")
            if not a.dtype.is_float:
                a, b = self.cast(a, dt.f32), self.cast(b, dt.f32)
            return self._wrap(a, mmath.PowFOp(a.v, b.v).result, a.dtype, dims)
        else:
            a, b = self.unify(a, b, node, op)
        d = a.dtype
        fl = d.is_float
        if op in CMP:
            if fl:
                r = arith.CmpFOp(getattr(arith.CmpFPredicate, _CMPF[op].upper()), a.v, b.v).result
            else:
                r = arith.CmpIOp(getattr(arith.CmpIPredicate, _CMPI[op]), a.v, b.v).result
            return self._wrap(a, r, dt.bool_, dims)
        table = {
            "add": (arith.AddFOp, arith.AddIOp), "sub": (arith.SubFOp, arith.SubIOp),
            "mul": (arith.MulFOp, arith.MulIOp), "truediv": (arith.DivFOp, None),
            "floordiv": (None, arith.FloorDivSIOp), "mod": (arith.RemFOp, arith.RemSIOp),
            "max": (arith.MaximumFOp, arith.MaxSIOp), "min": (arith.MinimumFOp, arith.MinSIOp),
            "and": (None, arith.AndIOp), "or": (None, arith.OrIOp), "xor": (None, arith.XOrIOp),
            "lshift": (None, arith.ShLIOp), "rshift": (None, arith.ShRSIOp),
        }
        fop, iop = table[op]
        if op in ("floordiv", "mod") and not fl and self.constant_int(b) == 0:
            self.error(node, f"integer {'division' if op == 'floordiv' else 'modulo'} by zero: the divisor is the "
                             "constant 0")
        if op == "floordiv" and fl:
            q = arith.DivFOp(a.v, b.v).result
            return self._wrap(a, mmath.FloorOp(q).result, d, dims)
        if op == "mod":  # Python's floor modulo, consistent with //: the result has b's sign
            r = self._wrap(a, (arith.RemFOp if fl else arith.RemSIOp)(a.v, b.v).result, d, dims)
            zero = 0.0 if fl else 0
            fix = self.logical("and", self.binop("ne", r, zero, node),
                               self.binop("ne", self.binop("lt", r, zero, node), self.binop("lt", b, zero, node), node), node)
            return self.select(fix, self.binop("add", r, b, node), r, node)
        cls = fop if fl else iop
        if cls is None:
            self.error(node, f"operator '{op}' is not defined for {d.name} values")
        return self._wrap(a, cls(a.v, b.v).result, d, dims)

    def constant_int(self, x):
        """The integer a value is known to hold at compile time, else None."""
        if not is_runtime(x):
            return x if isinstance(x, int) else None
        return tb.known_int(x.v)

    def _wrap(self, like: Val, v, d, dims=frozenset()):
        return Val(like.kind, v, d, like.shape, dims if like.kind == "scalar" else frozenset())

    def unary_math(self, fname: str, x, node=None):
        if not is_runtime(x):
            f = {"exp": math.exp, "log": math.log, "sqrt": math.sqrt, "tanh": math.tanh,
                 "abs": abs, "neg": operator.neg, "floor": math.floor, "ceil": math.ceil}.get(fname)
            if f is not None:
                return f(x)
            x = self.to_val(x, dt.f32)
        x = self.to_val(x)
        if fname == "neg":
            if x.dtype.is_float:
                return self._wrap(x, arith.NegFOp(x.v).result, x.dtype, x.dims)
            return self.binop("sub", 0, x, node)
        if fname == "not":
            b = self.cast(x, dt.bool_)
            return self.binop("xor", b, True, node)
        if fname == "abs":
            if x.dtype.is_float:
                return self._wrap(x, mmath.AbsFOp(x.v).result, x.dtype)
            return self._wrap(x, mmath.AbsIOp(x.v).result, x.dtype)
        if not x.dtype.is_float:
            x = self.cast(x, dt.f32)
        ops = {"exp": mmath.ExpOp, "log": mmath.LogOp, "sqrt": mmath.SqrtOp, "tanh": mmath.TanhOp,
               "floor": mmath.FloorOp, "ceil": mmath.CeilOp, "rsqrt": mmath.RsqrtOp}
        if fname not in ops:
            self.error(node, f"unknown math function '{fname}'")
        return self._wrap(x, ops[fname](x.v).result, x.dtype)

    def reciprocal(self, x, node=None):
        """1 / x, allowed to be approximate (`afn`): NVIDIA's rcp.approx (≤ 1 ulp, as Triton's division)
        instead of the IEEE rcp.rn and its slow-path subroutine; the CPU backend still divides exactly."""
        r = self.binop("truediv", 1.0, x, node)
        if is_runtime(r) and r.v.owner.name == "arith.divf":
            r.v.owner.attributes["fastmath"] = ir.Attribute.parse("#arith.fastmath<afn>")
        return r

    def fast_exp(self, x, node=None):
        """exp(x), allowed to be approximate (`afn`: NVIDIA's ex2.approx of x·log2 e, ≤ 2 ulp, as Triton's
        tl.exp): for the library functions built on it (sigmoid, softmax); `tile.exp` stays exact."""
        r = self.unary_math("exp", x, node)
        if is_runtime(r) and r.v.owner.name == "math.exp":
            r.v.owner.attributes["fastmath"] = ir.Attribute.parse("#arith.fastmath<afn>")
        return r

    def sigmoid(self, x, node=None, safe=False):
        if not is_runtime(x):
            return 1.0 / (1.0 + math.exp(-x))
        x = self.to_val(x)
        if not x.dtype.is_float:
            x = self.cast(x, dt.f32)
        if not safe:
            e = self.fast_exp(self.unary_math("neg", x, node), node)
            return self.reciprocal(self.binop("add", 1.0, e, node), node)
        # exp of -|x| never overflows; pick e/(1+e) or 1/(1+e) by sign.
        e = self.fast_exp(self.unary_math("neg", self.unary_math("abs", x, node), node), node)
        pos = self.reciprocal(self.binop("add", 1.0, e, node), node)
        neg = self.binop("mul", e, pos, node)
        return self.select(self.binop("ge", x, 0.0, node), pos, neg, node)

    def select(self, cond, a, b, node=None):
        if not is_runtime(cond):
            return a if cond else b
        cond = self.cast(self.to_val(cond), dt.bool_)
        if not is_runtime(a) and not is_runtime(b):
            d = dt.f32 if isinstance(a, float) or isinstance(b, float) else INDEX
            a, b = self.to_val(a, d), self.to_val(b, d)
        a, b = self.unify(a, b, node, "where")
        if cond.kind == "tile" or a.kind == "tile":
            shape = broadcast_shapes(cond.shape if cond.kind == "tile" else (), a.shape if a.kind == "tile" else ())
            if shape is None:
                self.error(node, "tile.where: condition and values do not broadcast")
            cond, a, b = self.broadcast_to(cond, shape), self.broadcast_to(a, shape), self.broadcast_to(b, shape)
        return self._wrap(a, arith.SelectOp(cond.v, a.v, b.v).result, a.dtype)

    # -- static values ---------------------------------------------------------------------
    def static_int(self, x, node, what="a compile-time constant"):
        if isinstance(x, bool):
            return int(x)
        if isinstance(x, int):
            return x
        if isinstance(x, Val) and x.kind == "scalar" and x.dims:
            raise NeedSpecialisation(x.dims)
        self.error(node, f"{what} is required here (a Python int, a ts.constexpr parameter or a named dim), got a runtime value")

    def as_index(self, x, node=None) -> Val:
        if isinstance(x, Val):
            if x.kind != "scalar" or not x.dtype.is_int:
                self.error(node, "an integer scalar is required as an index")
            return self.cast(x, INDEX)
        return self.const(self.static_int(x, node), INDEX)

    def reshape_tile(self, x: Val, shape, any_shape=False) -> Val:
        """Insert or drop unit dims (same number of elements); `any_shape`: any row-major reshape of the same
        size (the blocked GPU layout depends on the element count alone)."""
        shape = tuple(shape)
        if x.shape == shape:
            return x
        src = [d for d in x.shape if d != 1]
        dst = [d for d in shape if d != 1]
        if any_shape:
            src, dst = [math.prod(x.shape)], [math.prod(shape)]
        if src != dst:
            self.error(None, f"cannot reshape a tile of shape {list(x.shape)} to {list(shape)}")
        rt = ir.RankedTensorType.get(list(shape), mlir_type(x.dtype))
        return Val("tile", tensor.ReshapeOp(rt, x.v, self._shape_const(shape)).result, x.dtype, shape)

    def _shape_const(self, shape):
        t = ir.RankedTensorType.get([len(shape)], ir.IndexType.get())
        import numpy as np
        attr = ir.DenseElementsAttr.get(np.array(shape, dtype=np.int64), type=t)
        return arith.ConstantOp(t, attr).result
