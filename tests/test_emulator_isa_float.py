"""The PTX emulator against the PTX ISA: floating point (rounding modes, NaN and signed-zero rules) and
conversions (bf16x2 packing order, saturation), checked bit for bit against exact references."""
from __future__ import annotations

import math
from fractions import Fraction

import ml_dtypes
import numpy as np

from emu_ptx import (M32, M64, bf16_round_bits, bf16_value, bits_f32, f32_bits, f32_round_bits, lanewise, round_float,
                     s32, s64, u32, u64)

# -- 2. floating point -------------------------------------------------------------------------

E = Fraction(2)


def test_fma_rounding_modes_differ():
    one23 = 1 + E ** -23
    cases = [(one23, one23, -E ** -45),            # 1 + 2^-22 - 2^-46: rn up, rm/rz down
             (-one23, one23, E ** -45),            # its negation
             (1 + E ** -12, 1 + E ** -12, -(1 + E ** -11))]   # fused: 2^-24 exactly (a separate mul+add gives 0)
    rng = np.random.default_rng(5)
    r = rng.uniform(1, 2, (29, 3)).astype(np.float32) * rng.choice([-1, 1], (29, 3)).astype(np.float32)
    a = np.array([float(c[0]) for c in cases] + r[:, 0].tolist(), np.float32)
    b = np.array([float(c[1]) for c in cases] + r[:, 1].tolist(), np.float32)
    c = np.array([float(c[2]) for c in cases] + r[:, 2].tolist(), np.float32)
    out = lanewise("  fma.rn.f32 %f10, %f1, %f2, %f3;\n  fma.rz.f32 %f11, %f1, %f2, %f3;\n"
                   "  fma.rm.f32 %f12, %f1, %f2, %f3;\n  fma.rp.f32 %f13, %f1, %f2, %f3;\n"
                   "  mul.rn.f32 %f20, %f1, %f2;\n  add.rn.f32 %f14, %f20, %f3;",
                   [a, b, c], np.float32, 5).view(np.uint32)
    for i in range(32):
        exact = Fraction(float(a[i])) * Fraction(float(b[i])) + Fraction(float(c[i]))
        assert out[:4, i].tolist() == [f32_round_bits(exact, m) for m in ("rn", "rz", "rm", "rp")], i
        product = Fraction(round_float(Fraction(float(a[i])) * Fraction(float(b[i])), 23))
        assert out[4, i] == f32_round_bits(product + Fraction(float(c[i]))), i
    assert out[:4, 0].tolist() == [0x3F800002, 0x3F800001, 0x3F800001, 0x3F800002]
    assert out[:4, 1].tolist() == [0xBF800002, 0xBF800001, 0xBF800002, 0xBF800001]
    assert out[0, 2] == 0x33800000 and out[4, 2] == 0                # fma keeps the 2^-24 a mul + add loses


def test_fma_single_rounding_beyond_53_bits():
    t = E ** -100
    cases = [(1 + E ** -12, 1 + E ** -12, t),       # 1 + 2^-11 + 2^-24 + 2^-100: above the tie, rn rounds up
             (Fraction(1), Fraction(1), -t)]        # 1 - 2^-100: rz / rm give 0x3F7FFFFF
    a = np.array([float(x[0]) for x in cases], np.float32)
    b = np.array([float(x[1]) for x in cases], np.float32)
    c = np.array([float(x[2]) for x in cases], np.float32)
    out = lanewise("  fma.rn.f32 %f10, %f1, %f2, %f3;\n  fma.rz.f32 %f11, %f1, %f2, %f3;\n"
                   "  fma.rm.f32 %f12, %f1, %f2, %f3;\n  fma.rp.f32 %f13, %f1, %f2, %f3;",
                   [a, b, c], np.float32, 4).view(np.uint32)
    for i, (x, y, z) in enumerate(cases):
        exact = x * y + z
        assert out[:, i].tolist() == [f32_round_bits(exact, m) for m in ("rn", "rz", "rm", "rp")], i
    assert out[0, 0] == 0x3F801001 and out[2, 1] == 0x3F7FFFFF


NAN = float("nan")


def max_num(x, y, is_max):
    """PTX ISA max_num / min_num (+0.0 > -0.0)."""
    if math.isnan(x) and math.isnan(y):
        return NAN
    if math.isnan(x):
        return y
    if math.isnan(y):
        return x
    kx, ky = (x, math.copysign(1, x)), (y, math.copysign(1, y))
    return x if ((kx > ky) if is_max else (kx < ky)) else y


def test_max_min_nan_propagation():
    va = [NAN, 1.0, NAN, 2.0, -1.0, 3.5, -7.0, float("inf")]
    vb = [1.0, NAN, NAN, 3.0, -2.0, 3.5, float("-inf"), NAN]
    a, b = np.array(va, np.float32), np.array(vb, np.float32)
    out = lanewise("  max.f32 %f10, %f1, %f2;\n  max.NaN.f32 %f11, %f1, %f2;\n"
                   "  min.f32 %f12, %f1, %f2;\n  min.NaN.f32 %f13, %f1, %f2;", [a, b], np.float32, 4)
    for i, (x, y) in enumerate(zip(va, vb)):
        want = [max_num(x, y, True), NAN if (math.isnan(x) or math.isnan(y)) else max_num(x, y, True),
                max_num(x, y, False), NAN if (math.isnan(x) or math.isnan(y)) else max_num(x, y, False)]
        for k, w in enumerate(want):
            if math.isnan(w):
                assert np.isnan(out[k, i]), (k, x, y)
            else:
                assert f32_bits(out[k, i]) == f32_bits(w), (k, x, y)
    assert out[0, 0] == 1.0 and np.isnan(out[1, 0])                  # max(NaN, 1) = 1; max.NaN(NaN, 1) = NaN


def test_max_min_signed_zero():
    a, b = np.array([0.0, -0.0], np.float32), np.array([-0.0, 0.0], np.float32)
    out = lanewise("  max.f32 %f10, %f1, %f2;\n  min.f32 %f11, %f1, %f2;\n"
                   "  max.NaN.f32 %f12, %f1, %f2;\n  min.NaN.f32 %f13, %f1, %f2;", [a, b], np.float32, 4)
    bits = out.view(np.uint32)[:, :2]
    assert bits[0].tolist() == [0, 0] and bits[2].tolist() == [0, 0]                          # max: +0.0
    assert bits[1].tolist() == [0x80000000] * 2 and bits[3].tolist() == [0x80000000] * 2      # min: -0.0


def test_max_nan_gives_canonical_nan():
    a = bits_f32([0x7FC00000, 0xFFC00001, 0x7F800001])
    b = np.full(32, 1.0, np.float32)
    out = lanewise("  max.NaN.f32 %f10, %f1, %f2;\n  min.NaN.f32 %f11, %f1, %f2;", [a, b], np.float32, 2)
    assert out.view(np.uint32)[:, :3].tolist() == [[0x7FFFFFFF] * 3] * 2


def test_div_rn_and_rcp_rn_f32():
    rng = np.random.default_rng(6)
    a = np.concatenate([[1.0, 2.0, 1.0, -7.0, 1e30, 3.0],
                        rng.uniform(-100, 100, 26)]).astype(np.float32)
    b = np.concatenate([[3.0, 3.0, 10.0, 0.1, 7e-3, 3.0],
                        rng.uniform(0.01, 50, 26) * rng.choice([-1, 1], 26)]).astype(np.float32)
    out = lanewise("  div.rn.f32 %f10, %f1, %f2;\n  rcp.rn.f32 %f11, %f2;", [a, b], np.float32, 2).view(np.uint32)
    for i in range(32):
        x, y = Fraction(float(a[i])), Fraction(float(b[i]))
        assert out[0, i] == f32_round_bits(x / y), (a[i], b[i])
        assert out[1, i] == f32_round_bits(1 / y), b[i]
    assert out[0, 0] == 0x3EAAAAAB and out[1, 0] == 0x3EAAAAAB       # 1/3 rounds up


def test_rcp_sqrt_directed_rounding():
    b = np.array([3.0, -3.0, 10.0, 7.0], np.float32)
    out = lanewise("  rcp.rz.f32 %f10, %f1;\n  rcp.rm.f32 %f11, %f1;\n  rcp.rp.f32 %f12, %f1;",
                   [b], np.float32, 3).view(np.uint32)
    for i in range(4):
        y = Fraction(float(b[i]))
        assert out[:, i].tolist() == [f32_round_bits(1 / y, m) for m in ("rz", "rm", "rp")], b[i]
    out = lanewise("  sqrt.rp.f32 %f10, %f1;\n  sqrt.rm.f32 %f11, %f1;", [np.array([2.0], np.float32)],
                   np.float32, 2).view(np.uint32)
    assert out[:, 0].tolist() == [0x3FB504F4, 0x3FB504F3]       # sqrt(2) = 0x3FB504F3.3...


def test_f64_directed_rounding():
    x = np.array([1.0, 1.0], np.float64)
    y = np.array([2.0 ** -60, -(2.0 ** -60)], np.float64)
    out = lanewise("  add.rz.f64 %fd10, %fd1, %fd2;\n  add.rp.f64 %fd11, %fd1, %fd2;\n"
                   "  fma.rm.f64 %fd12, %fd1, %fd1, %fd2;", [x, y], np.float64, 3)
    assert out[0, :2].tolist() == [1.0, 1.0 - 2.0 ** -53]
    assert out[1, :2].tolist() == [1.0 + 2.0 ** -52, 1.0]
    assert out[2, :2].tolist() == [1.0, 1.0 - 2.0 ** -53]


def test_add_directed_rounding_with_large_exponent_gap():
    a = np.array([1.0, 1.0], np.float32)
    b = np.array([-(2.0 ** -60), 2.0 ** -60], np.float32)
    out = lanewise("  add.rm.f32 %f10, %f1, %f2;\n  add.rp.f32 %f11, %f1, %f2;\n  add.rz.f32 %f12, %f1, %f2;",
                   [a, b], np.float32, 3).view(np.uint32)
    for i in range(2):
        exact = Fraction(float(a[i])) + Fraction(float(b[i]))
        assert out[:, i].tolist() == [f32_round_bits(exact, m) for m in ("rm", "rp", "rz")], i
    assert out[0, 0] == 0x3F7FFFFF and out[1, 1] == 0x3F800001


def test_ex2_approx_ftz():
    vals = [0.0, 1.0, -1.0, 0.5, 10.3, -3.7, 20.0, -126.0, -125.5, 127.5, 1e-40, -1e-40]
    x = np.array(vals, np.float32)
    out = lanewise("  ex2.approx.ftz.f32 %f10, %f1;", [x], np.float32)[0]
    for i, v in enumerate(vals):
        want = 2.0 ** float(np.float32(v))
        assert abs(float(out[i]) - want) <= want * 2.0 ** -21, (v, out[i], want)
    assert out[0] == 1.0 and out[1] == 2.0 and out[10] == 1.0 and out[11] == 1.0   # subnormal input -> 2^0
    x = np.array([-140.0, -149.0, -np.inf, np.inf, np.nan], np.float32)
    out = lanewise("  ex2.approx.ftz.f32 %f10, %f1;", [x], np.float32)[0]
    assert f32_bits(out[:4]).tolist() == [0, 0, 0, 0x7F800000]        # subnormal results flush to +0
    assert np.isnan(out[4])


def test_setp_ordered_vs_unordered():
    va = [NAN, 1.0, NAN, 1.0, 2.0, 1.0, -0.0]
    vb = [1.0, NAN, NAN, 2.0, 1.0, 1.0, 0.0]
    a, b = np.array(va, np.float32), np.array(vb, np.float32)
    cmps = ["lt", "ltu", "le", "leu", "gt", "gtu", "ge", "geu", "eq", "equ", "ne", "neu", "num", "nan"]
    body = "\n".join(f"  setp.{c}.f32 %p1, %f1, %f2;\n  selp.u32 %r{10 + j}, 1, 0, %p1;" for j, c in enumerate(cmps))
    out = lanewise(body, [a, b], np.uint32, len(cmps))
    ops = {"lt": lambda x, y: x < y, "le": lambda x, y: x <= y, "gt": lambda x, y: x > y,
           "ge": lambda x, y: x >= y, "eq": lambda x, y: x == y, "ne": lambda x, y: x != y}
    for i, (x, y) in enumerate(zip(va, vb)):
        nan = math.isnan(x) or math.isnan(y)
        want = []
        for c in cmps:
            if c == "num":
                want.append(not nan)
            elif c == "nan":
                want.append(nan)
            elif c.endswith("u"):
                want.append(nan or ops[c[:-1]](x, y))
            else:
                want.append((not nan) and ops[c](x, y))
        assert out[:, i].tolist() == want, (x, y)
    assert out[0, 0] == 0 and out[1, 0] == 1                # lt(NaN, 1) false, ltu(NaN, 1) true
    assert out[10, 2] == 0 and out[11, 2] == 1              # ne(NaN, NaN) false (ordered), neu true


def test_setp_bf16_compares_values():
    """setp on .bf16 compares the bf16 values (it once read them as a .b16 bit type, 'uf16')."""
    va, vb = [1.0, -2.0, NAN, 0.5, -0.0], [2.0, -3.0, 1.0, 0.5, 0.0]
    a = np.array(va, ml_dtypes.bfloat16).view(np.uint16)
    b = np.array(vb, ml_dtypes.bfloat16).view(np.uint16)
    body = ("  setp.lt.bf16 %p1, %h1, %h2;\n  selp.u32 %r10, 1, 0, %p1;\n"
            "  setp.gtu.bf16 %p2, %h1, %h2;\n  selp.u32 %r11, 1, 0, %p2;\n"
            "  setp.eq.bf16 %p3, %h1, %h2;\n  selp.u32 %r12, 1, 0, %p3;")
    out = lanewise(body, [a, b], np.uint32, 3)
    assert out[0, :5].tolist() == [1, 0, 0, 0, 0]     # lt: -2 < -3 false, NaN unordered false
    assert out[1, :5].tolist() == [0, 1, 1, 0, 0]     # gtu: NaN true
    assert out[2, :5].tolist() == [0, 0, 0, 1, 1]     # eq: -0 == 0


def test_cvt_sat_f32():
    vals = [NAN, 1.5, -0.5, 0.25, np.inf, -np.inf, 1.0, 0.0, 0.999999940, 1e-30, -NAN]
    x = np.array(vals, np.float32)
    out = lanewise("  cvt.sat.f32.f32 %f10, %f1;\n  add.sat.f32 %f11, %f1, 0f00000000;", [x], np.float32, 2)
    want = [0.0, 1.0, 0.0, 0.25, 1.0, 0.0, 1.0, 0.0, float(np.float32(0.999999940)), float(np.float32(1e-30)), 0.0]
    assert f32_bits(out[0, :11]).tolist() == f32_bits(want).tolist()
    assert f32_bits(out[1, :11]).tolist() == f32_bits(want).tolist()


# -- 3. conversions ----------------------------------------------------------------------------

def test_cvt_bf16x2_packing_order():
    rng = np.random.default_rng(7)
    a = np.concatenate([[1.0, -2.5], rng.standard_normal(30)]).astype(np.float32)
    b = np.concatenate([[2.0, 0.15625], rng.standard_normal(30)]).astype(np.float32)
    out = lanewise("  cvt.rn.bf16x2.f32 %r10, %f1, %f2;", [a, b], np.uint32)[0]
    assert out[0] == 0x3F804000                             # d.hi = bf16(a) = 1.0, d.lo = bf16(b) = 2.0
    for i in range(32):
        assert out[i] == (bf16_round_bits(Fraction(float(a[i]))) << 16) | bf16_round_bits(Fraction(float(b[i])))


def test_cvt_bf16_round_to_nearest_even():
    bits = [0x3F808000, 0x3F818000, 0x3F808001, 0x3F80FFFF, 0xBF808000, 0xBF818000, 0x3F7FFFFF,
            0x7F7FFFFF, 0x00008000, 0x00018000, 0x40490FDB, 0xC0490FDB, 0x3F800000]
    want = [0x3F80, 0x3F82, 0x3F81, 0x3F81, 0xBF80, 0xBF82, 0x3F80, 0x7F80, 0x0000, 0x0002, 0x4049, 0xC049, 0x3F80]
    x = bits_f32(bits)
    out = lanewise("  cvt.rn.bf16.f32 %h10, %f1;", [x], np.uint16)[0]
    assert out[:len(bits)].tolist() == want
    # ml_dtypes: an independent implementation of the same rounding
    assert out[:len(bits)].tolist() == x[:len(bits)].astype(ml_dtypes.bfloat16).view(np.uint16).tolist()
    nan = lanewise("  cvt.rn.bf16.f32 %h10, %f1;", [bits_f32([0x7FC00000, 0xFFFFFFFF])], np.uint16)[0, :2]
    assert all((int(v) & 0x7F80) == 0x7F80 and (int(v) & 0x7F) != 0 for v in nan)


def test_cvt_f32_from_bf16_is_exact():
    hb = np.array([0x3F80, 0xBF81, 0x0001, 0x7F80, 0xFF80, 0x4049, 0x8000, 0x7F7F], np.uint16)
    out = lanewise("  cvt.f32.bf16 %f10, %h1;", [hb], np.float32)[0]
    assert f32_bits(out[:8]).tolist() == [int(h) << 16 for h in hb]


def test_cvt_float_to_int_saturates_and_nan_is_zero():
    vals = [3.7, -3.7, 2.5, -2.5, 3.5, 3e9, -3e9, NAN, np.inf, -np.inf, 2147483520.0, 2147483648.0, -2147483648.0,
            0.49999997, -0.0, 1e-30]
    x = np.array(vals, np.float32)
    out = lanewise("  cvt.rzi.s32.f32 %r10, %f1;\n  cvt.rni.s32.f32 %r11, %f1;\n  cvt.rmi.s32.f32 %r12, %f1;\n"
                   "  cvt.rpi.s32.f32 %r13, %f1;\n  cvt.rzi.u32.f32 %r14, %f1;", [x], np.uint32, 5)

    def sat(v, lo, hi):
        if math.isnan(v):
            return 0
        return max(lo, min(hi, v))

    def rne(y):                                     # Python's round() is round-half-even
        return y if math.isinf(y) or math.isnan(y) else round(y)

    for i, v in enumerate(vals):
        f = float(np.float32(v))
        want = [sat(math.trunc(f) if math.isfinite(f) else f, -2 ** 31, 2 ** 31 - 1),
                sat(rne(f), -2 ** 31, 2 ** 31 - 1),
                sat(math.floor(f) if math.isfinite(f) else f, -2 ** 31, 2 ** 31 - 1),
                sat(math.ceil(f) if math.isfinite(f) else f, -2 ** 31, 2 ** 31 - 1),
                sat(math.trunc(f) if math.isfinite(f) else f, 0, 2 ** 32 - 1)]
        assert out[:, i].tolist() == [int(w) & M32 for w in want], v
    assert out[0, :2].tolist() == [3, (-3) & M32] and out[0, 5] == 0x7FFFFFFF and out[0, 6] == 0x80000000
    assert out[0, 7] == 0 and out[4, 7] == 0 and out[4, 1] == 0 and out[4, 5] == 3000000000
    assert out[1, 2] == 2 and out[1, 3] == (-2) & M32 and out[1, 4] == 4      # rni: ties to even
    x = np.array([1e19, -1e19, NAN, 2.0 ** 62, -(2.0 ** 63)], np.float32)
    out = lanewise("  cvt.rzi.s64.f32 %rd10, %f1;\n  cvt.rzi.u64.f32 %rd11, %f1;", [x], np.uint64, 2)
    assert out[0, :5].tolist() == [(1 << 63) - 1, 1 << 63, 0, 1 << 62, 1 << 63]
    assert out[1, :5].tolist() == [int(np.float32(1e19)), 0, 0, 1 << 62, 0]


def test_cvt_integer_widths():
    a64 = u64([0x123456789, 0xFFFFFFFF80000000, 0x00000000FFFFFFFF, 1 << 63])
    out = lanewise("  cvt.u32.u64 %r10, %rd1;\n  cvt.s32.s64 %r11, %rd1;\n  cvt.u16.u64 %h20, %rd1;\n"
                   "  cvt.u32.u16 %r12, %h20;", [a64], np.uint32, 3)
    assert out[0, :4].tolist() == [0x23456789, 0x80000000, 0xFFFFFFFF, 0]
    assert out[1, :4].tolist() == [0x23456789, 0x80000000, 0xFFFFFFFF, 0]
    assert out[2, :4].tolist() == [0x6789, 0, 0xFFFF, 0]
    a32 = u32([-5, 5, 0x80000000, 0xFFFFFFFF])
    out = lanewise("  cvt.s64.s32 %rd10, %r1;\n  cvt.u64.u32 %rd11, %r1;\n  cvt.u64.s32 %rd12, %r1;\n"
                   "  cvt.s64.u32 %rd13, %r1;", [a32], np.uint64, 4)
    for i, x in enumerate(a32[:4].tolist()):
        assert out[0, i] == s32(x) & M64 and out[2, i] == s32(x) & M64     # the source type sign-extends
        assert out[1, i] == x and out[3, i] == x                           # .u32 source zero-extends
    assert out[0, 0] == 0xFFFFFFFFFFFFFFFB
    h = np.array([0x8001, 0x7FFF], np.uint16)
    out = lanewise("  cvt.s32.s16 %r10, %h1;\n  cvt.u32.u16 %r11, %h1;\n", [h], np.uint32, 2)
    assert out[0, :2].tolist() == [0xFFFF8001, 0x7FFF] and out[1, :2].tolist() == [0x8001, 0x7FFF]


def test_cvt_sat_integer():
    a = u32([-5, 0xFFFFFFFF, 0x80000000, 300, -300, 127])
    out = lanewise("  cvt.sat.u32.s32 %r10, %r1;\n  cvt.sat.s32.u32 %r11, %r1;\n  cvt.sat.s8.s32 %r12, %r1;\n"
                   "  cvt.sat.u8.s32 %r13, %r1;", [a], np.uint32, 4)
    for i, x in enumerate(a[:6].tolist()):
        sx = s32(x)
        assert out[0, i] == max(0, sx)
        assert out[1, i] == min(x, 2 ** 31 - 1)
        assert out[2, i] == max(-128, min(127, sx)) & M32      # a signed type sign-extends into the wider register
        assert out[3, i] == max(0, min(255, sx))
    a = u64([M64, 1 << 63, (1 << 63) - 1, 5, (1 << 63) + 1000])
    out = lanewise("  cvt.sat.s32.s64 %r10, %rd1;\n  cvt.sat.u32.u64 %r11, %rd1;", [a], np.uint32, 2)
    for i, x in enumerate(a[:5].tolist()):
        assert out[0, i] == max(-2 ** 31, min(2 ** 31 - 1, s64(x))) & M32
        assert out[1, i] == min(x, M32)


def test_cvt_sat_64bit_to_64bit():
    a = u64([M64, (1 << 63) - 1, 1 << 63, 5])
    out = lanewise("  cvt.sat.s64.u64 %rd10, %rd1;\n  cvt.sat.u64.s64 %rd11, %rd1;", [a], np.uint64, 2)
    assert out[0, :4].tolist() == [(1 << 63) - 1, (1 << 63) - 1, (1 << 63) - 1, 5]
    assert out[1, :4].tolist() == [0, (1 << 63) - 1, 0, 5]


def test_cvt_rn_float_from_int():
    v = [2 ** 60 + 2 ** 36 + 1, 16777219, -16777219, 2 ** 63 - 1, 2 ** 24 + 1, -(2 ** 63), 12345]
    out = lanewise("  cvt.rn.f32.s64 %f10, %rd1;\n  cvt.rn.f32.u64 %f11, %rd1;", [u64(v)], np.float32, 2)
    bits = out.view(np.uint32)
    for i, x in enumerate(v):
        assert bits[0, i] == f32_round_bits(Fraction(x)), x          # one rounding (no f64 step)
        assert bits[1, i] == f32_round_bits(Fraction(x & M64)), x
    out = lanewise("  cvt.rn.f32.s32 %f10, %r1;\n  cvt.rn.f32.u32 %f11, %r1;", [u32(v)], np.float32, 2)
    bits = out.view(np.uint32)
    for i, x in enumerate(v):
        assert bits[0, i] == f32_round_bits(Fraction(s32(x))) and bits[1, i] == f32_round_bits(Fraction(x & M32))


def test_cvt_directed_float_from_int():
    v = [16777219, -16777219, 2 ** 63 - 1, 2 ** 60 + 2 ** 36 + 1]
    out = lanewise("  cvt.rz.f32.s64 %f10, %rd1;\n  cvt.rm.f32.s64 %f11, %rd1;\n  cvt.rp.f32.s64 %f12, %rd1;",
                   [u64(v)], np.float32, 3).view(np.uint32)
    for i, x in enumerate(v):
        assert out[:, i].tolist() == [f32_round_bits(Fraction(x), m) for m in ("rz", "rm", "rp")], x


def bf16x2(hi, lo):
    return (int(hi) << 16) | int(lo)


def test_bf16x2_add_and_fma():
    one, one7 = 0x3F80, 0x3F81                               # 1.0, 1 + 2^-7
    e8, one6 = 0x3B80, 0x3F82                                # 2^-8, 1 + 2^-6
    rng = np.random.default_rng(8)
    rand = [bf16_round_bits(Fraction(float(v))) for v in rng.uniform(-4, 4, 6 * 26)]
    A = [bf16x2(one7, one), bf16x2(one7, one7)] + [bf16x2(rand[6 * i], rand[6 * i + 1]) for i in range(26)]
    B = [bf16x2(e8, e8), bf16x2(one7, one7)] + [bf16x2(rand[6 * i + 2], rand[6 * i + 3]) for i in range(26)]
    C = [bf16x2(0, 0), bf16x2(0xBF82, 0xBF80)] + [bf16x2(rand[6 * i + 4], rand[6 * i + 5]) for i in range(26)]
    A, B, C = A + [A[0]] * 4, B + [B[0]] * 4, C + [C[0]] * 4
    out = lanewise("  add.rn.bf16x2 %r10, %r1, %r2;\n  fma.rn.bf16x2 %r11, %r1, %r2, %r3;\n"
                   "  mul.rn.bf16x2 %r12, %r1, %r2;", [u32(A), u32(B), u32(C)], np.uint32, 3)
    for i in range(32):
        want_add, want_fma, want_mul = 0, 0, 0
        for sh in (0, 16):
            x, y, z = (Fraction(bf16_value((v >> sh) & 0xFFFF)) for v in (A[i], B[i], C[i]))
            want_add |= bf16_round_bits(x + y) << sh
            want_fma |= bf16_round_bits(x * y + z) << sh
            want_mul |= bf16_round_bits(x * y) << sh
        assert out[:, i].tolist() == [want_add, want_fma, want_mul], i
    # ties to even in both halves: 1 + 2^-8 -> 1.0 (lo), (1 + 2^-7) + 2^-8 -> 1 + 2^-6 (hi)
    assert out[0, 0] == bf16x2(one6, one)
    # fused: (1 + 2^-7)^2 - (1 + 2^-6) = 2^-14 (hi, 0x3880); (1 + 2^-7)^2 - 1 = 2^-6 + 2^-14 -> tie -> 2^-6 (lo)
    assert out[1, 1] == bf16x2(0x3880, 0x3C80)
