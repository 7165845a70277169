"""Floating-point ALU: f16 / f32 / f64, bf16 and the packed bf16x2 / f16x2 forms.

- Rounding: `.rn` results are NumPy's IEEE operations in the type itself; `.rz/.rm/.rp` (and every
  fma) are computed exactly in f64 and rounded to f32 with the mode. 16-bit results are rounded from
  f64 through round-to-odd f32, which is correct rounding (no double-rounding error).
- NaN rules: `max.NaN` / `min.NaN` propagate NaN; plain `max` / `min` return the other operand.
- `.ftz` flushes subnormal inputs and results to signed zero.
- Approximate functions (`ex2.approx`, `rcp.approx`, `sqrt.approx`, `rsqrt`, `lg2`, `sin`, `cos`,
  `tanh`) are computed exactly: the hardware's few-ulp error is not modelled.
"""
from __future__ import annotations

import numpy as np

from .. import values as V

_UNARY = {"ex2": np.exp2, "lg2": np.log2, "sqrt": np.sqrt, "sin": np.sin, "cos": np.cos, "tanh": np.tanh,
          "rcp": lambda x: x.dtype.type(1) / x, "rsqrt": lambda x: x.dtype.type(1) / np.sqrt(x)}


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


def _binary(o, mods, args):
    """The exact (f64) result of a two- or three-operand op; None where the op is not exact-rounded."""
    if o == "add":
        return args[0] + args[1]
    if o == "sub":
        return args[0] - args[1]
    if o == "mul":
        return args[0] * args[1]
    if o in ("fma", "mad"):
        return args[0] * args[1] + args[2]
    if o == "div":
        return args[0] / args[1]
    if o == "max":
        return np.maximum(args[0], args[1]) if "NaN" in mods else np.fmax(args[0], args[1])
    if o == "min":
        return np.minimum(args[0], args[1]) if "NaN" in mods else np.fmin(args[0], args[1])
    if o == "neg":
        return -args[0]
    if o == "abs":
        return np.abs(args[0])
    if o == "copysign":
        return np.copysign(args[1], args[0])
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
            halves.append(to_bits(_binary(o, ins.mods, args)).astype(np.uint32))
        wr(halves[0] | (halves[1] << np.uint32(16)), em)
    return run


def compile(ins, M):
    o, mods, ops = ins.opcode, ins.mods, ins.operands
    t = V.instruction_types(mods)[-1]
    if t in ("bf16x2", "f16x2"):
        return _packed(ins, M, t)
    rnd = next((m for m in mods if m in ("rn", "rz", "rm", "rp")), "rn")
    ftz = "ftz" in mods
    sat = "sat" in mods
    rd = [M.reader(x, t, ins) for x in ops[1:]]
    if t in ("bf16", "f16"):
        wr = M.writer(ops[0], "b16", ins)
        tobits = f64_to_bf16_bits if t == "bf16" else f64_to_f16_bits

        def half(em):
            args = [np.asarray(r(), np.float64) for r in rd]
            v = _binary(o, mods, args)
            if sat:
                v = np.where(np.isnan(v), 0.0, np.clip(v, 0.0, 1.0))
            wr(tobits(v), em)
        return half
    wr = M.writer(ops[0], t, ins)
    cd = V.compute_dtype(t)
    exact_in_type = rnd == "rn" and o not in ("fma", "mad") or o in ("max", "min", "neg", "abs", "copysign") \
        or o in _UNARY or t == "f64"
    if o in ("fma", "mad") and t == "f64":
        exact_in_type = False

    def run(em):
        args = [r() for r in rd]
        if ftz:
            args = [V.flush_subnormal(x) for x in args]
        if exact_in_type:
            v = np.asarray(_binary(o, mods, [np.asarray(x, cd) for x in args]), cd)
        else:
            v = V.round_f64_to_f32(_binary(o, mods, [np.asarray(x, np.float64) for x in args]), rnd) \
                if t == "f32" else np.asarray(_binary(o, mods, [np.asarray(x, np.longdouble) for x in args]), cd)
        if sat:
            v = np.where(np.isnan(v), cd(0), np.clip(v, cd(0), cd(1))).astype(cd)
        if ftz:
            v = V.flush_subnormal(v)
        wr(v, em)
    return run
