"""Moves, conversions, comparisons and selects.

- cvt: int ↔ int (sign / zero extension, truncation, `.sat`), int → float (rounded to nearest),
  float → int (`.rni/.rzi/.rmi/.rpi`, saturating, NaN → 0), float → float (`.rn` narrowing incl.
  bf16 / f16, `.sat` clamps to [0, 1] with NaN → 0, integral rounding `.rni` etc.), and the packed
  `cvt.rn.bf16x2.f32 d, a, b` / `f16x2` whose packing order is d.hi = cvt(a), d.lo = cvt(b).
- cvta: global addresses are generic addresses here; shared ones live in a window at 2^47.
- mov: registers, immediates, special registers, symbols (a shared symbol's offset), and the
  vector forms `mov.b32 {lo, hi}, r` (unpack, `_` sinks) / `mov.b32 r, {lo, hi}` (pack).
- setp with every comparison (ordered / unordered floats, signed / unsigned ints) and the
  `.and/.or/.xor` combination with a third predicate; selp.
"""
from __future__ import annotations

import numpy as np

from .. import values as V
from ..memory import SHARED_WINDOW
from .floating import f64_to_bf16_bits, f64_to_f16_bits

_INTEGRAL = {"rni": np.rint, "rzi": np.trunc, "rmi": np.floor, "rpi": np.ceil}
_CMP = {"eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal, "gt": np.greater,
        "ge": np.greater_equal, "lo": np.less, "ls": np.less_equal, "hi": np.greater, "hs": np.greater_equal}
_BOOL = {"and": np.logical_and, "or": np.logical_or, "xor": np.logical_xor}


def _float_kind(t):
    return t[0] == "f" or t == "bf16"


def cvt(ins, M):
    mods, ops = ins.mods, ins.operands
    types = V.instruction_types(mods)
    dt, st = types[0], types[1]
    rnd = next((m for m in mods if m in ("rn", "rz", "rm", "rp", "rni", "rzi", "rmi", "rpi")), None)
    sat = "sat" in mods
    ftz = "ftz" in mods
    if dt in ("bf16x2", "f16x2"):
        a, b = M.reader(ops[1], st, ins), M.reader(ops[2], st, ins)
        wr = M.writer(ops[0], "b32", ins)
        conv = f64_to_bf16_bits if dt == "bf16x2" else f64_to_f16_bits

        def pack(em):
            hi = conv(np.asarray(a(), np.float64)).astype(np.uint32)
            lo = conv(np.asarray(b(), np.float64)).astype(np.uint32)
            wr((hi << np.uint32(16)) | lo, em)
        return pack
    src = M.reader(ops[1], st, ins)
    if _float_kind(dt):
        if dt in ("bf16", "f16"):
            wr = M.writer(ops[0], "b16", ins)
            conv = f64_to_bf16_bits if dt == "bf16" else f64_to_f16_bits

            def to_half(em):
                v = np.asarray(src(), np.float64)
                if rnd in _INTEGRAL:
                    v = _INTEGRAL[rnd](v)
                if sat:
                    v = np.where(np.isnan(v), 0.0, np.clip(v, 0.0, 1.0))
                wr(conv(v), em)
            return to_half
        wr = M.writer(ops[0], dt, ins)
        cd = V.compute_dtype(dt)

        def to_float(em):
            v = src()
            if ftz:
                v = V.flush_subnormal(v)
            if _float_kind(st) and rnd in _INTEGRAL:
                v = _INTEGRAL[rnd](v)
            if dt == "f32" and st == "f64" and rnd in ("rz", "rm", "rp"):
                r = V.round_f64_to_f32(v, rnd)
            elif not _float_kind(st) and rnd in ("rz", "rm", "rp"):
                r = _int_to_float_directed(np.asarray(v), cd, rnd)
            else:
                r = np.asarray(v).astype(cd)
            if sat:
                r = np.where(np.isnan(r), cd(0), np.clip(r, cd(0), cd(1))).astype(cd)
            if ftz:
                r = V.flush_subnormal(r)
            wr(r, em)
        return to_float
    w = V.type_bits(dt)
    lo, hi = (-(1 << (w - 1)), (1 << (w - 1)) - 1) if dt[0] == "s" else (0, (1 << w) - 1)
    wr = M.writer(ops[0], dt, ins)
    cd = V.compute_dtype(dt)
    if _float_kind(st):
        fn = _INTEGRAL.get(rnd, np.trunc)

        def to_int(em):
            v = fn(np.asarray(src(), np.float64))
            v = np.nan_to_num(v, nan=0.0, posinf=float(hi), neginf=float(lo))
            v = np.clip(v, lo, hi)
            if w == 64:   # float64 cannot hold 2^63 - 1: saturate through exact comparisons
                big = v >= 2.0 ** (w - 1 if dt[0] == "s" else w)
                r = np.where(big, cd(hi), np.where(big, 0, v).astype(cd))
            else:
                r = v.astype(cd)
            wr(r, em)
        return to_int

    def int_to_int(em):
        v = np.asarray(src())
        if sat:
            v = _saturate_int(v, lo, hi)
        wr(v.astype(cd), em)
    return int_to_int


def _saturate_int(v, lo, hi):
    """Clamp integers to [lo, hi] with exact comparisons (no float64 round trip for 64-bit values)."""
    if v.dtype == np.uint64:
        return np.where(v > np.uint64(min(hi, 2 ** 64 - 1)), np.uint64(min(hi, 2 ** 64 - 1)), v)
    v = v.astype(np.int64)
    v = np.where(v < np.int64(max(lo, -2 ** 63)), np.int64(max(lo, -2 ** 63)), v)
    if hi < 2 ** 63:
        v = np.where(v > np.int64(hi), np.int64(hi), v)
    return v


def _int_to_float_directed(v, cd, mode):
    """Integers → f32 / f64 with .rz/.rm/.rp, lane by lane with exact integer comparisons."""
    f = v.astype(cd)
    flat_v, flat_f = np.atleast_1d(v), np.atleast_1d(f).copy()
    for i in range(flat_v.size):
        exact = int(flat_v[i])
        x = flat_f[i]
        got = int(x) if np.isfinite(x) else None
        if got is None or got == exact:
            continue
        too_big = got > exact
        if mode == "rm" and too_big or mode == "rz" and exact > 0 and too_big:
            flat_f[i] = np.nextafter(x, cd(-np.inf))
        elif mode == "rp" and not too_big or mode == "rz" and exact < 0 and not too_big:
            flat_f[i] = np.nextafter(x, cd(np.inf))
    return flat_f.reshape(np.shape(f)) if np.ndim(f) else flat_f[0]


def cvta(ins, M):
    to = "to" in ins.mods
    shared = any(m.startswith("shared") for m in ins.mods)
    t = V.instruction_types(ins.mods)[-1]
    src = M.reader(ins.operands[1], t, ins)
    wr = M.writer(ins.operands[0], t, ins)
    window = V.compute_dtype(t)(SHARED_WINDOW) if shared and V.type_bits(t) == 64 else None
    if not shared:
        return lambda em: wr(src(), em)
    if window is None:
        return lambda em: wr(src(), em)      # 32-bit shared addresses are offsets in both forms
    if to:
        return lambda em: wr(src() - window, em)
    return lambda em: wr(src() + window, em)


def mov(ins, M):
    t = V.instruction_types(ins.mods)[-1]
    dst, src = ins.operands
    if t == "pred":
        r, wr = M.reader(src, "pred", ins), M.writer(dst, "pred", ins)
        return lambda em: wr(r(), em)
    w = V.type_bits(t)
    bt = "b%d" % w if t[0] != "f" else t
    if dst[0] == "vec":
        ew = w // len(dst[1])
        r = M.reader(src, "b%d" % w, ins)
        wrs = [M.writer(d, "b%d" % ew, ins) for d in dst[1]]
        m = np.uint64((1 << ew) - 1)

        def unpack(em):
            v = np.asarray(r()).astype(np.uint64)
            for i, wri in enumerate(wrs):
                wri(((v >> np.uint64(i * ew)) & m).astype(V.UINT[ew]), em)
        return unpack
    if src[0] == "vec":
        ew = w // len(src[1])
        rs = [M.reader(s, "b%d" % ew, ins) for s in src[1]]
        wr = M.writer(dst, "b%d" % w, ins)

        def pack(em):
            acc = np.zeros(M.n, np.uint64)
            for i, r in enumerate(rs):
                acc |= np.asarray(r()).astype(np.uint64) << np.uint64(i * ew)
            wr(acc.astype(V.UINT[w]), em)
        return pack
    r, wr = M.reader(src, bt, ins), M.writer(dst, bt, ins)
    return lambda em: wr(r(), em)


def selp(ins, M):
    t = V.instruction_types(ins.mods)[-1]
    if t == "bf16":
        t = "b16"
    a, b = M.reader(ins.operands[1], t, ins), M.reader(ins.operands[2], t, ins)
    c = M.reader(ins.operands[3], "pred", ins)
    wr = M.writer(ins.operands[0], t, ins)
    return lambda em: wr(np.where(c(), a(), b()), em)


def setp(ins, M):
    mods = ins.mods
    cmp_ = mods[0]
    t = V.instruction_types(mods)[-1]
    combine = next((m for m in mods[1:] if m in _BOOL), None)
    if t[0] == "b" and t[1:].isdigit():   # b16/b32/b64 compare as unsigned (bf16 is a float)
        t = "u" + t[1:]
    a, b = M.reader(ins.operands[1], t, ins), M.reader(ins.operands[2], t, ins)
    c = M.reader(ins.operands[3], "pred", ins) if combine else None
    wr = M.writer(ins.operands[0], "pred", ins)
    floaty = _float_kind(t)
    if floaty:
        if cmp_ in ("num", "nan"):
            base, unordered = None, None
        elif cmp_.endswith("u"):
            base, unordered = _CMP[cmp_[:-1]], True
        else:
            base, unordered = _CMP[cmp_], False
    else:
        base = _CMP[cmp_]

    def run(em):
        x, y = a(), b()
        if floaty:
            nan = np.isnan(x) | np.isnan(y)
            if cmp_ == "num":
                r = ~nan
            elif cmp_ == "nan":
                r = nan
            elif unordered:
                r = base(x, y) | nan
            else:
                r = base(x, y) & ~nan
        else:
            r = base(x, y)
        if combine:
            r = _BOOL[combine](r, c())
        wr(r, em)
    return run
