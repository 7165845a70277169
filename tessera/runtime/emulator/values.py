"""PTX types as NumPy dtypes, and the bit-level conversions the semantics share: bf16 packing
(round to nearest even, canonical NaN), f64 → f32 with a directed rounding mode, flush to zero.

A register holds raw bits in an unsigned array of its declared width (bool for predicates); an
instruction views them as the type it names. bf16 is computed in f32 and rounded back."""
from __future__ import annotations

import numpy as np

from .ptx import type_bits

UINT = {8: np.uint8, 16: np.uint16, 32: np.uint32, 64: np.uint64}
SINT = {8: np.int8, 16: np.int16, 32: np.int32, 64: np.int64}
FLOAT = {16: np.float16, 32: np.float32, 64: np.float64}
PTX_TYPES = frozenset(("pred", "b8", "b16", "b32", "b64", "b128", "u8", "u16", "u32", "u64", "s8", "s16", "s32",
                       "s64", "f16", "f32", "f64", "bf16", "bf16x2", "f16x2"))


def storage_dtype(bits: int):
    """The dtype a register of this declared width is stored in."""
    return np.bool_ if bits == 1 else UINT[max(bits, 8)]


def compute_dtype(t: str):
    """The dtype a value of PTX type `t` is computed in (bf16 in f32; packed x2 types as raw u32)."""
    if t == "pred":
        return np.bool_
    if t == "bf16":
        return np.float32
    if t in ("bf16x2", "f16x2"):
        return np.uint32
    w = type_bits(t)
    k = t[0]
    if k == "f":
        return FLOAT[w]
    if k == "s":
        return SINT[w]
    return UINT[max(w, 8)]


def instruction_types(mods) -> list:
    return [m for m in mods if m in PTX_TYPES]


def bf16_to_f32(bits):
    return (np.asarray(bits).astype(np.uint32) << np.uint32(16)).view(np.float32)


def f32_to_bf16(v):
    """f32 → bf16 bits, round to nearest even; NaN becomes the canonical 0x7FFF (as cvt.rn.bf16 does)."""
    f = np.asarray(v, np.float32)
    u = f.view(np.uint32)
    r = ((u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)).astype(np.uint16)
    return np.where(np.isnan(f), np.uint16(0x7FFF), r)


def f16_bits_to_f32(bits):
    return np.asarray(bits).astype(np.uint16).view(np.float16).astype(np.float32)


def round_f64_to_f32(x, mode: str):
    """An exact f64 result rounded to f32 with a PTX rounding modifier (rn, rz, rm, rp)."""
    x = np.asarray(x, np.float64)
    f = x.astype(np.float32)
    if mode == "rn":
        return f
    fd = f.astype(np.float64)
    if mode == "rm":
        return np.where(fd > x, np.nextafter(f, np.float32(-np.inf)), f)
    if mode == "rp":
        return np.where(fd < x, np.nextafter(f, np.float32(np.inf)), f)
    if mode == "rz":
        return np.where(np.abs(fd) > np.abs(x), np.nextafter(f, np.float32(0)), f)
    return f


def flush_subnormal(a):
    """.ftz: subnormal inputs and results become zero of the same sign."""
    a = np.asarray(a)
    if a.dtype.kind != "f":
        return a
    tiny = np.finfo(a.dtype).tiny
    return np.where(np.abs(a) < tiny, np.copysign(a.dtype.type(0), a), a)


def wrap_int(value: int, bits: int) -> int:
    return int(value) & ((1 << bits) - 1)
