"""Integer ALU (two's complement, wrapping), bit-field extract, and predicate logic.

Forms: add/sub/mul.lo/mul.hi/mul.wide/mad.lo/mad.hi/mad.wide, div/rem (truncating; a zero divisor
gives all ones for div and the dividend for rem, as the hardware does), min/max, neg/abs,
and/or/xor/not on b16..b64 and .pred, shl/shr (shift amounts ≥ the width give 0, or the sign for
shr.s), bfe (with sign extension for .s)."""
from __future__ import annotations

import numpy as np

from .. import values as V


def _mulhi(a, b, t):
    if t in ("u64", "s64"):
        ua, ub = np.asarray(a).astype(np.uint64), np.asarray(b).astype(np.uint64)
        m32, s = np.uint64(0xFFFFFFFF), np.uint64(32)
        a0, a1, b0, b1 = ua & m32, ua >> s, ub & m32, ub >> s
        mid = a1 * b0 + ((a0 * b0) >> s)
        hi = a1 * b1 + (mid >> s) + ((a0 * b1 + (mid & m32)) >> s)
        if t == "s64":
            hi = hi - np.where(np.asarray(a) < 0, ub, np.uint64(0)) - np.where(np.asarray(b) < 0, ua, np.uint64(0))
            return hi.view(np.int64)
        return hi
    w = V.type_bits(t)
    wide = np.int64 if t[0] == "s" or w < 32 else np.uint64
    return ((np.asarray(a).astype(wide) * np.asarray(b).astype(wide)) >> w).astype(V.compute_dtype(t))


def _div(a, b, t, rem):
    cd = V.compute_dtype(t)
    a = np.asarray(a, cd)
    b = np.asarray(b, cd)
    zero = b == 0
    bz = np.where(zero, cd(1), b)
    if t[0] == "s":
        # truncating division; INT_MIN / -1 wraps to INT_MIN
        minus_one = bz == cd(-1)
        safe = np.where(minus_one, cd(1), bz)
        q = a // safe
        q = q + (((a % safe) != 0) & ((a < 0) != (safe < 0))).astype(cd)
        q = np.where(minus_one, np.negative(a), q)
    else:
        q = a // bz
    if rem:
        r = (a - q * bz).astype(cd)
        return np.where(zero, a, r)
    return np.where(zero, np.asarray(-1).astype(cd), q.astype(cd))


def compile(ins, M):
    o, mods, ops = ins.opcode, ins.mods, ins.operands
    types = V.instruction_types(mods)
    t = types[-1]
    wr = M.writer(ops[0], t if not ("wide" in mods) else ("s" if t[0] == "s" else "u") + str(2 * V.type_bits(t)), ins)
    if t == "pred":
        a = M.reader(ops[1], "pred", ins)
        if o == "not":
            return lambda em: wr(~a(), em)
        b = M.reader(ops[2], "pred", ins)
        f = {"and": np.logical_and, "or": np.logical_or, "xor": np.logical_xor}[o]
        return lambda em: wr(f(a(), b()), em)
    if t[0] == "b" and o not in ("and", "or", "xor", "not", "shl", "shr", "mov"):
        t = "u" + t[1:]
    w = V.type_bits(t)
    cd = V.compute_dtype(t)
    a = M.reader(ops[1], t, ins)
    if o in ("not", "neg", "abs"):
        f = {"not": np.invert, "neg": np.negative, "abs": np.abs}[o]
        return lambda em: wr(f(a()), em)
    if o == "bfe":
        pos = M.reader(ops[2], "u32", ins)
        ln = M.reader(ops[3], "u32", ins)
        signed = t[0] == "s"

        def bfe(em):
            # ISA: sbit = signed ? a[min(pos + len - 1, msb)] : 0; d[i] = (i < len && pos + i <= msb) ? a[pos + i] : sbit
            x = np.asarray(a()).astype(cd, copy=False).view(V.UINT[w]).astype(np.uint64)
            p = np.asarray(pos()).astype(np.int64) & 0xFF
            n = np.asarray(ln()).astype(np.int64) & 0xFF
            valid = np.clip(np.minimum(n, w - p), 0, w)
            ones = np.uint64(0xFFFFFFFFFFFFFFFF)
            mask = np.where(valid >= 64, ones, (np.uint64(1) << np.minimum(valid, 63).astype(np.uint64)) - np.uint64(1))
            field = (x >> np.minimum(p, 63).astype(np.uint64)) & mask
            field = np.where(p >= w, np.uint64(0), field)
            if signed:
                top = np.clip(p + n - 1, 0, w - 1).astype(np.uint64)
                sbit = np.where(n > 0, (x >> top) & np.uint64(1), np.uint64(0))
                field = np.where(sbit == 1, field | (~mask), field)
            wmask = np.uint64((1 << w) - 1) if w < 64 else ones
            wr((field & wmask).astype(V.UINT[w]).view(cd), em)
        return bfe
    if o in ("shl", "shr"):
        b = M.reader(ops[2], "u32", ins)
        arith = o == "shr" and t[0] == "s"
        sd = V.SINT[w] if arith else V.UINT[w]

        def shift(em):
            x = np.asarray(a()).astype(cd, copy=False).view(sd)
            n = np.asarray(b()).astype(np.uint64)
            k = np.minimum(n, np.uint64(w - 1)).astype(sd)
            v = (x >> k) if o == "shr" else (x << k)
            big = n >= w
            if np.any(big):
                v = np.where(big, (x >> sd(w - 1)) if arith else sd(0), v)
            wr(np.asarray(v, sd).view(cd), em)
        return shift
    b = M.reader(ops[2], t, ins)
    if o in ("and", "or", "xor"):
        f = {"and": np.bitwise_and, "or": np.bitwise_or, "xor": np.bitwise_xor}[o]
        return lambda em: wr(f(a(), b()), em)
    if o == "mul" and "wide" in mods:
        wt = V.SINT[2 * w] if t[0] == "s" else V.UINT[2 * w]
        return lambda em: wr(np.asarray(a()).astype(wt) * np.asarray(b()).astype(wt), em)
    if o == "mul" and "hi" in mods:
        return lambda em: wr(_mulhi(a(), b(), t), em)
    if o == "mad":
        c = M.reader(ops[3], t if "wide" not in mods else ("s" if t[0] == "s" else "u") + str(2 * w), ins)
        if "wide" in mods:
            wt = V.SINT[2 * w] if t[0] == "s" else V.UINT[2 * w]
            return lambda em: wr(np.asarray(a()).astype(wt) * np.asarray(b()).astype(wt) + c(), em)
        if "hi" in mods:
            return lambda em: wr(_mulhi(a(), b(), t) + c(), em)
        return lambda em: wr(a() * b() + c(), em)
    if o in ("div", "rem"):
        return lambda em: wr(_div(a(), b(), t, o == "rem"), em)
    f = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "min": np.minimum, "max": np.maximum}[o]
    if "sat" in mods and t == "s32" and o in ("add", "sub"):
        def sat(em):
            v = f(np.asarray(a()).astype(np.int64), np.asarray(b()).astype(np.int64))
            wr(np.clip(v, -2 ** 31, 2 ** 31 - 1).astype(np.int32), em)
        return sat
    return lambda em: wr(f(a(), b()), em)


def prmt(ins, M):
    """prmt.b32 d, a, b, c (the default mode): each byte of d is byte c[4i+2:4i] of the 8 bytes {b, a}
    (a's bytes 0-3, b's 4-7), or, when c[4i+3] is set, that byte's sign replicated (0xFF / 0x00)."""
    from ....errors import EmulatorError
    modes = [m for m in ins.mods if m != "b32"]
    if modes:
        raise EmulatorError(f"the emulator implements prmt's default mode only, not .{'.'.join(modes)} "
                            f"(PTX line {ins.line})")
    ops = ins.operands
    wr = M.writer(ops[0], "u32", ins)
    a, b, c = (M.reader(x, "u32", ins) for x in ops[1:4])

    def run(em):
        lo = np.asarray(a()).astype(np.uint64)
        hi = np.asarray(b()).astype(np.uint64)
        word = lo | (hi << np.uint64(32))
        sel = np.asarray(c()).astype(np.uint64)
        out = np.zeros(np.broadcast(word, sel).shape, np.uint64)
        for i in range(4):
            s = (sel >> np.uint64(4 * i)) & np.uint64(0xF)
            byte = (word >> ((s & np.uint64(7)) * np.uint64(8))) & np.uint64(0xFF)
            sign = np.where(byte & np.uint64(0x80), np.uint64(0xFF), np.uint64(0))
            out |= np.where(s & np.uint64(8), sign, byte) << np.uint64(8 * i)
        wr(out.astype(np.uint32), em)
    return run


def bfi(ins, M):
    """bfi.b32 / .b64 d, f, b, pos, len: b with bits [pos, pos + len) replaced by f's low len bits (pos and len
    taken mod 256; bits past the msb are dropped)."""
    t = V.instruction_types(ins.mods)[-1]
    w = V.type_bits(t)
    ut = V.UINT[w]
    ops = ins.operands
    wr = M.writer(ops[0], "u" + str(w), ins)
    f, b = M.reader(ops[1], "u" + str(w), ins), M.reader(ops[2], "u" + str(w), ins)
    pos, ln = M.reader(ops[3], "u32", ins), M.reader(ops[4], "u32", ins)

    def run(em):
        x, y = np.asarray(f()).astype(np.uint64), np.asarray(b()).astype(np.uint64)
        p = np.asarray(pos()).astype(np.int64) & 0xFF
        n = np.clip(np.minimum(np.asarray(ln()).astype(np.int64) & 0xFF, w - p), 0, w)
        ones = np.uint64(0xFFFFFFFFFFFFFFFF)
        field = np.where(n >= 64, ones, (np.uint64(1) << np.minimum(n, 63).astype(np.uint64)) - np.uint64(1))
        shift = np.minimum(p, 63).astype(np.uint64)
        mask = np.where(p >= w, np.uint64(0), field << shift)
        out = (y & ~mask) | ((x << shift) & mask)
        wmask = np.uint64((1 << w) - 1) if w < 64 else ones
        wr((out & wmask).astype(ut), em)
    return run
