"""Floating-point ALU: f16 / f32 / f64, bf16 and the packed bf16x2 / f16x2 forms.

- Rounding: every result is correctly rounded in the instruction's mode (`.rn/.rz/.rm/.rp`).
  f32 results come from exact f64 values where f64 holds them (products, quotients' signs) or from
  an exact pair s + e (TwoSum) for sums and fma, rounded once; f64 directed modes and fma.f64 are
  computed exactly with rationals (rare forms). 16-bit results are rounded from f64 through
  round-to-odd f32, which is correct rounding (no double-rounding error).
- NaN rules: NaN results of max/min are the canonical NaN (0x7FFFFFFF); `max.NaN` / `min.NaN`
  propagate NaN, plain `max` / `min` return the other operand; +0 > -0 for max/min.
- `.ftz` flushes subnormal inputs and results to signed zero; `.sat` clamps to [0, 1], NaN → 0.
- Approximate functions (`ex2.approx`, `lg2`, `sin`, `cos`, `tanh`, `rsqrt`, `.approx` rcp/sqrt/div)
  are computed correctly rounded: the hardware's few-ulp error is not modelled.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np

from .. import values as V

_UNARY = {"ex2": np.exp2, "lg2": np.log2, "sqrt": np.sqrt, "sin": np.sin, "cos": np.cos, "tanh": np.tanh,
          "rcp": lambda x: x.dtype.type(1) / x, "rsqrt": lambda x: x.dtype.type(1) / np.sqrt(x)}
CANONICAL_NAN32 = np.array(0x7FFFFFFF, np.uint32).view(np.float32)[()]
CANONICAL_NAN64 = np.array(0x7FFFFFFFFFFFFFFF, np.uint64).view(np.float64)[()]


def f64_to_f32_odd(x):
    """f64 → f32 rounding to odd: exact values unchanged, inexact ones truncated with the last bit set."""
    f = x.astype(np.float32)
    inexact = f.astype(np.float64) != x
    if not np.any(inexact):
        return f
    t = V.round_f64_to_f32(x, "rz")
    odd = (t.view(np.uint32) | np.uint32(1)).view(np.float32)
    return np.where(inexact & np.isfinite(x), odd, f)


def f64_to_bf16_bits(x):
    return V.f32_to_bf16(f64_to_f32_odd(np.asarray(x, np.float64)))


def f64_to_f16_bits(x):
    return f64_to_f32_odd(np.asarray(x, np.float64)).astype(np.float16).view(np.uint16)


def two_sum(a, b):
    """s = fl(a + b) and the exact error e: a + b = s + e (f64)."""
    s = a + b
    bb = s - a
    e = (a - (s - bb)) + (b - bb)
    return s, np.where(np.isfinite(s), e, 0.0)


def round_to_f32(s, e, mode):
    """The f32 in rounding mode `mode` of the exact value s + e (f64 pair, |e| ≤ ulp(s) / 2)."""
    s = np.asarray(s, np.float64)
    e = np.asarray(e, np.float64)
    f = s.astype(np.float32)
    fd = f.astype(np.float64)
    if mode == "rn":
        if not np.any(e):
            return f
        other = np.where(fd < s, np.nextafter(f, np.float32(np.inf)), np.nextafter(f, np.float32(-np.inf)))
        mid = (fd + other.astype(np.float64)) / 2
        flip = (s == mid) & (e != 0) & ((e > 0) == (other.astype(np.float64) > fd))
        return np.where(flip, other, f)
    above = (fd > s) | ((fd == s) & (e < 0))          # f > exact value
    below = (fd < s) | ((fd == s) & (e > 0))          # f < exact value
    down, up = np.nextafter(f, np.float32(-np.inf)), np.nextafter(f, np.float32(np.inf))
    if mode == "rm":
        return np.where(above, down, f)
    if mode == "rp":
        return np.where(below, up, f)
    negative = (s < 0) | ((s == 0) & (e < 0))
    return np.where(~negative & above, down, np.where(negative & below, up, f))


def _fix_by_sign(f, diff_sign, mode):
    """Directed rounding of an RN result f given sign(f - exact) per lane (-1, 0, +1)."""
    if mode == "rn":
        return f
    down, up = np.nextafter(f, f.dtype.type(-np.inf)), np.nextafter(f, f.dtype.type(np.inf))
    if mode == "rm":
        return np.where(diff_sign > 0, down, f)
    if mode == "rp":
        return np.where(diff_sign < 0, up, f)
    return np.where((f > 0) & (diff_sign > 0), down, np.where((f < 0) & (diff_sign < 0), up, f))


def _exact(x):
    return Fraction(float(x)) if np.isfinite(x) else None


def _round_fraction_f64(q, mode, fallback):
    if q is None:
        return fallback
    f = float(q)
    if mode == "rn" or Fraction(f) == q:
        return f
    if mode == "rm" and Fraction(f) > q or mode == "rz" and q > 0 and Fraction(f) > q:
        return float(np.nextafter(f, -np.inf))
    if mode == "rp" and Fraction(f) < q or mode == "rz" and q < 0 and Fraction(f) < q:
        return float(np.nextafter(f, np.inf))
    return f


def _f64_exact(o, args, mode):
    """f64 add/sub/mul/fma/div correctly rounded in any mode, lane by lane with rationals."""
    fast = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide}
    approx = fast[o](args[0], args[1]) if o in fast else args[0] * args[1] + args[2]
    n = max(np.size(a) for a in args)
    cols = [np.broadcast_to(np.asarray(a, np.float64), (n,)) for a in args]
    approx = np.broadcast_to(np.asarray(approx, np.float64), (n,))
    out = np.empty(n, np.float64)
    for i in range(n):
        xs = [_exact(c[i]) for c in cols]
        if any(x is None for x in xs) or (o == "div" and xs[1] == 0):
            out[i] = approx[i]
            continue
        q = {"add": lambda: xs[0] + xs[1], "sub": lambda: xs[0] - xs[1], "mul": lambda: xs[0] * xs[1],
             "div": lambda: xs[0] / xs[1], "fma": lambda: xs[0] * xs[1] + xs[2],
             "mad": lambda: xs[0] * xs[1] + xs[2]}[o]()
        out[i] = _round_fraction_f64(q, mode, approx[i])
    return out


def _maxmin(o, mods, a, b, cd):
    nan_prop = "NaN" in mods
    if o == "max":
        v = np.maximum(a, b) if nan_prop else np.fmax(a, b)
    else:
        v = np.minimum(a, b) if nan_prop else np.fmin(a, b)
    zeros = (a == 0) & (b == 0)
    if np.any(zeros):
        neg = (np.signbit(a) & np.signbit(b)) if o == "max" else (np.signbit(a) | np.signbit(b))
        v = np.where(zeros, np.where(neg, cd(-0.0), cd(0.0)), v)
    nan = CANONICAL_NAN32 if cd == np.float32 else CANONICAL_NAN64 if cd == np.float64 else cd(np.nan)
    return np.where(np.isnan(v), nan, v).astype(cd)


_SIGN_OPS = ("max", "min", "neg", "abs", "copysign")


def _sign_op(o, mods, args, cd):
    """The ops that round nothing: max / min (signed zeros, NaN rules), neg, abs, copysign."""
    if o in ("max", "min"):
        return _maxmin(o, mods, args[0], args[1], cd)
    if o == "neg":
        return -args[0]
    if o == "abs":
        return np.abs(args[0])
    return np.copysign(args[1], args[0])


def _f32(o, mods, args, mode):
    """One f32 op, correctly rounded in `mode`."""
    if o in _SIGN_OPS:
        return _sign_op(o, mods, args, np.float32)
    d = [np.asarray(x, np.float64) for x in args]
    if o in ("add", "sub"):
        if mode == "rn":
            return (args[0] + args[1]) if o == "add" else (args[0] - args[1])
        return round_to_f32(*two_sum(d[0], d[1] if o == "add" else -d[1]), mode)
    if o == "mul":
        return V.round_f64_to_f32(d[0] * d[1], mode)          # a 48-bit product is exact in f64
    if o in ("fma", "mad"):
        return round_to_f32(*two_sum(d[0] * d[1], d[2]), mode)
    if o in ("div", "rcp"):
        num, den = (d[0], d[1]) if o == "div" else (np.float64(1), d[0])
        f = (num / den).astype(np.float32)                     # innocuous double rounding for rn
        if mode == "rn":
            return f
        return _fix_by_sign(f, np.sign(f.astype(np.float64) * den - num) * np.sign(den), mode)
    if o == "sqrt":
        f = np.sqrt(d[0]).astype(np.float32)
        if mode == "rn":
            return f
        return _fix_by_sign(f, np.sign(f.astype(np.float64) * f.astype(np.float64) - d[0]), mode)
    if o in _UNARY:
        return _UNARY[o](d[0]).astype(np.float32)
    raise KeyError(o)


_IN_TYPE = {"add": lambda a: a[0] + a[1], "sub": lambda a: a[0] - a[1], "mul": lambda a: a[0] * a[1],
            "div": lambda a: a[0] / a[1], "fma": lambda a: a[0] * a[1] + a[2], "mad": lambda a: a[0] * a[1] + a[2]}


def _f64(o, mods, args, mode):
    if o in _SIGN_OPS:
        return _sign_op(o, mods, args, np.float64)
    if o in ("fma", "mad") or (mode != "rn" and o in _IN_TYPE):
        return _f64_exact(o, [np.asarray(x, np.float64) for x in args], mode)
    if o in _IN_TYPE:
        return _IN_TYPE[o](args)
    if o in _UNARY:
        return _UNARY[o](np.asarray(args[0], np.float64))
    raise KeyError(o)


def _wide(o, mods, args):
    """The f64 value of a 16-bit op (exact for add/sub/mul/fma of 16-bit inputs), rounded by the caller."""
    if o in _SIGN_OPS:
        return _sign_op(o, mods, args, np.float64)
    if o in _IN_TYPE:
        return _IN_TYPE[o](args)
    if o in _UNARY:
        return _UNARY[o](args[0])
    raise KeyError(o)


def _packed(ins, M, t):
    """bf16x2 / f16x2: two lanes of 16 bits per 32-bit register, low half first."""
    o, ops = ins.opcode, ins.operands
    rd = [M.reader(x, "b32", ins) for x in ops[1:]]
    wr = M.writer(ops[0], "b32", ins)
    to_f = V.bf16_to_f32 if t == "bf16x2" else V.f16_bits_to_f32
    to_bits = f64_to_bf16_bits if t == "bf16x2" else f64_to_f16_bits

    def run(em):
        regs = [np.asarray(r()).astype(np.uint32) for r in rd]
        halves = []
        for shift in (0, 16):
            args = [to_f((x >> np.uint32(shift)) & np.uint32(0xFFFF)).astype(np.float64) for x in regs]
            halves.append(to_bits(_wide(o, ins.mods, args)).astype(np.uint32))
        wr(halves[0] | (halves[1] << np.uint32(16)), em)
    return run


def compile(ins, M):
    o, mods, ops = ins.opcode, ins.mods, ins.operands
    t = V.instruction_types(mods)[-1]
    if t in ("bf16x2", "f16x2"):
        return _packed(ins, M, t)
    mode = next((m for m in mods if m in ("rn", "rz", "rm", "rp")), "rn")
    ftz = "ftz" in mods
    sat = "sat" in mods
    rd = [M.reader(x, t, ins) for x in ops[1:]]
    if t in ("bf16", "f16"):
        wr = M.writer(ops[0], "b16", ins)
        tobits = f64_to_bf16_bits if t == "bf16" else f64_to_f16_bits

        def half(em):
            v = _wide(o, mods, [np.asarray(r(), np.float64) for r in rd])
            if sat:
                v = np.where(np.isnan(v), 0.0, np.clip(v, 0.0, 1.0))
            wr(tobits(v), em)
        return half
    wr = M.writer(ops[0], t, ins)
    cd = V.compute_dtype(t)
    op = _f32 if t == "f32" else _f64

    def run(em):
        args = [np.asarray(r(), cd) for r in rd]
        if ftz:
            args = [V.flush_subnormal(x) for x in args]
        v = np.asarray(op(o, mods, args, mode), cd)
        if sat:
            v = np.where(np.isnan(v), cd(0), np.clip(v, cd(0), cd(1))).astype(cd)
        if ftz:
            v = V.flush_subnormal(v)
        wr(v, em)
    return run
