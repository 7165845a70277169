"""tessera-expand-fp8: f8E4M3FN ↔ f32 conversions as integer bit manipulation.

Why: the pinned LLVM 22.1 lowers no `arith.extf` / `arith.truncf` involving f8E4M3FN (neither
`arith-expand` nor the LLVM conversion handles it), so fp8 storage (seed 001's mixed-precision layer)
would fail to translate. Values in memory are bytes either way; this pass rewrites each conversion
(scalar or vector) into i8/i32 arithmetic with the semantics of ml_dtypes.float8_e4m3fn: round to
nearest even, subnormals, no infinities, overflow and NaN give NaN (0x7F with the sign).
Runs after `arith-emulate-unsupported-floats` (which turns fp8 arithmetic into f32 arithmetic).
"""
from __future__ import annotations

from mlir import ir
from mlir.dialects import arith, math

name = "tessera-expand-fp8"


def _is_f8(t):
    return str(t) == "f8E4M3FN"


def _elem(t):
    return t.element_type if isinstance(t, (ir.VectorType, ir.RankedTensorType)) else t


def _like(t, elem):
    if isinstance(t, ir.VectorType):
        return ir.VectorType.get(list(t.shape), elem)
    return elem


def _c(t, v):
    """A constant of type t (scalar or vector splat)."""
    e = _elem(t)
    attr = ir.IntegerAttr.get(e, v) if isinstance(e, ir.IntegerType) else ir.FloatAttr.get(e, v)
    if isinstance(t, ir.VectorType):
        return arith.ConstantOp(t, ir.DenseElementsAttr.get_splat(t, attr)).result
    return arith.ConstantOp(t, attr).result


def _sel(c, a, b):
    return arith.SelectOp(c, a, b).result


def _cmp(pred, a, b):
    return arith.CmpIOp(getattr(arith.CmpIPredicate, pred), a, b).result


def extf(x, result_type):
    """f8E4M3FN (bits) → f32 → result_type."""
    t = x.type
    i8, i32, f32 = (_like(t, ir.IntegerType.get_signless(w)) for w in (8, 32, 32))
    f32 = _like(t, ir.F32Type.get())
    c = arith.ExtUIOp(i32, arith.BitcastOp(i8, x).result).result
    sign = arith.ShLIOp(arith.AndIOp(c, _c(i32, 0x80)).result, _c(i32, 24)).result
    e = arith.AndIOp(arith.ShRUIOp(c, _c(i32, 3)).result, _c(i32, 0xF)).result
    m = arith.AndIOp(c, _c(i32, 7)).result
    normal = arith.OrIOp(arith.ShLIOp(arith.AddIOp(e, _c(i32, 120)).result, _c(i32, 23)).result,
                         arith.ShLIOp(m, _c(i32, 20)).result).result
    sub = arith.BitcastOp(i32, arith.MulFOp(arith.UIToFPOp(f32, m).result, _c(f32, 2.0 ** -9)).result).result
    mag = _sel(_cmp("eq", e, _c(i32, 0)), sub, normal)
    nan = arith.AndIOp(_cmp("eq", e, _c(i32, 15)), _cmp("eq", m, _c(i32, 7))).result
    mag = _sel(nan, _c(i32, 0x7FC00000), mag)
    y = arith.BitcastOp(f32, arith.OrIOp(sign, mag).result).result
    re = _elem(result_type)
    if str(re) == "f32":
        return y
    return (arith.ExtFOp if re.width > 32 else arith.TruncFOp)(result_type, y).result


def truncf(x, result_type):
    """float → f32 → f8E4M3FN bits, round to nearest even."""
    t = x.type
    f32 = _like(t, ir.F32Type.get())
    if str(_elem(t)) != "f32":
        x = (arith.ExtFOp if _elem(t).width < 32 else arith.TruncFOp)(f32, x).result
    i32, i8 = _like(t, ir.IntegerType.get_signless(32)), _like(t, ir.IntegerType.get_signless(8))
    u = arith.BitcastOp(i32, x).result
    sign = arith.ShRUIOp(arith.AndIOp(u, _c(i32, -0x80000000)).result, _c(i32, 24)).result
    a = arith.AndIOp(u, _c(i32, 0x7FFFFFFF)).result
    # normals: round the f32 mantissa to 3 bits (ties to even), then re-bias the exponent (127 → 7)
    lsb = arith.AndIOp(arith.ShRUIOp(a, _c(i32, 20)).result, _c(i32, 1)).result
    r = arith.ShRUIOp(arith.AddIOp(arith.AddIOp(a, _c(i32, (1 << 19) - 1)).result, lsb).result, _c(i32, 20)).result
    normal = arith.SubIOp(r, _c(i32, 120 << 3)).result
    # subnormals (|x| < 2^-6): m · 2^-9 with m = roundeven(|x| · 512)
    absx = arith.BitcastOp(f32, a).result
    m = arith.FPToSIOp(i32, math.RoundEvenOp(arith.MulFOp(absx, _c(f32, 512.0)).result).result).result
    small = _cmp("ult", a, _c(i32, 121 << 23))           # exponent below 2^-6
    code = _sel(small, m, normal)
    bad = arith.OrIOp(_cmp("sgt", code, _c(i32, 0x7E)), _cmp("ugt", a, _c(i32, 0x7F800000))).result
    code = _sel(bad, _c(i32, 0x7F), code)
    out = arith.TruncIOp(i8, arith.OrIOp(code, sign).result).result
    return arith.BitcastOp(result_type, out).result


def run(module_op):
    todo = []

    def visit(op):
        if op.name == "arith.extf" and _is_f8(_elem(op.operands[0].type)):
            todo.append(op)
        elif op.name == "arith.truncf" and _is_f8(_elem(op.results[0].type)):
            todo.append(op)
        return ir.WalkResult.ADVANCE
    module_op.walk(visit)
    for op in todo:
        with ir.InsertionPoint(op), op.location:
            fn = extf if op.name == "arith.extf" else truncf
            new = fn(op.operands[0], op.results[0].type)
        op.results[0].replace_all_uses_with(new)
        op.erase()
