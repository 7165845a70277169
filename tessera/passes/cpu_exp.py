"""tessera-cpu-exp: f32 `math.exp` → a polynomial in arith ops, so loops of exponentials vectorise.

Why: `convert-math-to-llvm` turns `math.exp` into `llvm.exp`, which the JIT compiles to one libm `expf`
call per element. A call in a loop body stops LLVM's loop vectoriser; sigmoid, softmax and SiLU tiles
spent a third of their time in libm. This pass emits Cephes' expf instead, on scalars or vectors:
n = round(x·log2 e), r = x − n·ln 2 (in two parts, exact for |n| ≤ 256), a degree-6 polynomial in r,
then the scale 2^n as two halves of n (so results down to the subnormals are scaled, not flushed).
Error within 2 ulp of the correctly rounded result over the whole range; x > 88.7228 gives +inf,
x < −103.98 gives 0, NaN stays NaN.
Assumes: runs after `arith-emulate-unsupported-floats` (bf16/f16 exponentials are f32 by then) and
before `convert-math-to-llvm`. Other element types are left to libm.
"""
from __future__ import annotations

from mlir import ir
from mlir.dialects import arith, math

name = "tessera-cpu-exp"

# Cephes expf coefficients (r in [-ln2/2, ln2/2]), highest degree first
_POLY = (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1)
_LN2_HI, _LN2_LO = 0.693359375, -2.12194440e-4
_MAX, _MIN = 88.72283935546875, -103.97207708
_LOG2E = 1.44269504088896341


def _const(t, v):
    et = ir.VectorType(t).element_type if isinstance(t, ir.VectorType) else t
    attr = ir.FloatAttr.get(et, v) if isinstance(et, ir.FloatType) else ir.IntegerAttr.get(et, v)
    if isinstance(t, ir.VectorType):
        return arith.ConstantOp(t, ir.DenseElementsAttr.get_splat(t, attr)).result
    return arith.ConstantOp(t, attr).result


def _like(t, et):
    return ir.VectorType.get(ir.VectorType(t).shape, et) if isinstance(t, ir.VectorType) else et


def _exp(x):
    t = x.type
    i32 = _like(t, ir.IntegerType.get_signless(32))
    c = lambda v: _const(t, v)           # noqa: E731
    ci = lambda v: _const(i32, v)        # noqa: E731
    xc = arith.MinimumFOp(arith.MaximumFOp(x, c(_MIN)).result, c(_MAX)).result
    n = math.RoundEvenOp(arith.MulFOp(xc, c(_LOG2E)).result).result
    r = arith.SubFOp(xc, arith.MulFOp(n, c(_LN2_HI)).result).result
    r = arith.SubFOp(r, arith.MulFOp(n, c(_LN2_LO)).result).result
    p = c(_POLY[0])
    for k in _POLY[1:]:
        p = math.FmaOp(p, r, c(k)).result
    r2 = arith.MulFOp(r, r).result
    p = arith.AddFOp(math.FmaOp(p, r2, r).result, c(1.0)).result
    ni = arith.FPToSIOp(i32, n).result
    half = arith.ShRSIOp(ni, ci(1)).result
    scales = [arith.BitcastOp(t, arith.ShLIOp(arith.AddIOp(k, ci(127)).result, ci(23)).result).result
              for k in (half, arith.SubIOp(ni, half).result)]
    y = arith.MulFOp(arith.MulFOp(p, scales[0]).result, scales[1]).result
    y = arith.SelectOp(arith.CmpFOp(arith.CmpFPredicate.OGT, x, c(_MAX)).result, c(float("inf")), y).result
    y = arith.SelectOp(arith.CmpFOp(arith.CmpFPredicate.OLT, x, c(_MIN)).result, c(0.0), y).result
    return arith.SelectOp(arith.CmpFOp(arith.CmpFPredicate.UNO, x, x).result, x, y).result


def run(module_op):
    found = []

    def visit(op):
        if op.name == "math.exp":
            t = op.results[0].type
            et = ir.VectorType(t).element_type if isinstance(t, ir.VectorType) else t
            if isinstance(et, ir.F32Type):
                found.append(op)
        return ir.WalkResult.ADVANCE
    module_op.walk(visit)
    for op in found:
        with ir.InsertionPoint(op), op.location:
            new = _exp(op.operands[0])
        op.results[0].replace_all_uses_with(new)
        op.erase()
