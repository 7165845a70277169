"""The PTX emulator against the PTX ISA: the integer ALU (wrapping, widening, division, shifts, bit
fields, signed vs unsigned compares, predicate logic), checked bit for bit against Python integers."""
from __future__ import annotations

import numpy as np

from emu_ptx import M32, M64, lanewise, s32, s64, u32, u64

# -- 1. integer ALU ----------------------------------------------------------------------------

def tdiv(a, b):
    """C / PTX integer division: truncation toward zero."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def test_add_sub_wrap_32_and_64():
    a = u32([0xFFFFFFFF, 0x80000000, 0x7FFFFFFF, 5, 0, 0x12345678])
    b = u32([1, 0x80000000, 1, 7, 1, 0xFEDCBA98])
    out = lanewise("  add.u32 %r10, %r1, %r2;\n  sub.u32 %r11, %r1, %r2;\n  add.s32 %r12, %r1, %r2;\n"
                   "  sub.s32 %r13, %r2, %r1;", [a, b], np.uint32, 4)
    A, B = a.tolist(), b.tolist()
    assert out[0].tolist() == [(x + y) & M32 for x, y in zip(A, B)]
    assert out[1].tolist() == [(x - y) & M32 for x, y in zip(A, B)]
    assert out[2].tolist() == [(x + y) & M32 for x, y in zip(A, B)]
    assert out[3].tolist() == [(y - x) & M32 for x, y in zip(A, B)]
    assert out[2][2] == 0x80000000          # INT_MAX + 1 wraps to INT_MIN
    a = u64([M64, 1 << 63, (1 << 63) - 1, 3])
    b = u64([1, 1 << 63, 1, 5])
    out = lanewise("  add.s64 %rd10, %rd1, %rd2;\n  sub.u64 %rd11, %rd1, %rd2;", [a, b], np.uint64, 2)
    A, B = a.tolist(), b.tolist()
    assert out[0].tolist() == [(x + y) & M64 for x, y in zip(A, B)]
    assert out[1].tolist() == [(x - y) & M64 for x, y in zip(A, B)]


def test_mul_wide_signed_and_unsigned():
    rng = np.random.default_rng(1)
    vals_a = [-1, 0x7FFFFFFF, -0x80000000, -0x80000000, 3, -7] + rng.integers(-2 ** 31, 2 ** 31, 26).tolist()
    vals_b = [-1, 0x7FFFFFFF, -0x80000000, 2, -5, 9] + rng.integers(-2 ** 31, 2 ** 31, 26).tolist()
    a, b = u32(vals_a), u32(vals_b)
    out = lanewise("  mul.wide.s32 %rd10, %r1, %r2;\n  mul.wide.u32 %rd11, %r1, %r2;\n"
                   "  mul.lo.s32 %r20, %r1, %r2;\n  cvt.u64.u32 %rd12, %r20;\n"
                   "  mul.hi.s32 %r21, %r1, %r2;\n  cvt.u64.u32 %rd13, %r21;\n"
                   "  mul.hi.u32 %r22, %r1, %r2;\n  cvt.u64.u32 %rd14, %r22;", [a, b], np.uint64, 5)
    for i, (x, y) in enumerate(zip(a.tolist(), b.tolist())):
        assert out[0, i] == (s32(x) * s32(y)) & M64
        assert out[1, i] == x * y
        assert out[2, i] == (x * y) & M32
        assert out[3, i] == ((s32(x) * s32(y)) >> 32) & M32
        assert out[4, i] == (x * y) >> 32


def test_mul_hi_lo_64_against_python_big_ints():
    rng = np.random.default_rng(2)
    extra = [M64, 1 << 63, (1 << 63) - 1, 1, 0, 0xFFFFFFFF, 0x100000000, 0xDEADBEEFCAFEBABE]
    va = extra + [int(x) for x in rng.integers(0, 2 ** 63, 24, dtype=np.uint64) * 2 + 1]
    vb = extra[::-1] + [int(x) for x in rng.integers(0, 2 ** 63, 24, dtype=np.uint64) * 2]
    a, b = u64(va), u64(vb)
    out = lanewise("  mul.hi.u64 %rd10, %rd1, %rd2;\n  mul.hi.s64 %rd11, %rd1, %rd2;\n"
                   "  mul.lo.u64 %rd12, %rd1, %rd2;", [a, b], np.uint64, 3)
    for i, (x, y) in enumerate(zip(a.tolist(), b.tolist())):
        assert out[0, i] == (x * y) >> 64
        assert out[1, i] == ((s64(x) * s64(y)) >> 64) & M64
        assert out[2, i] == (x * y) & M64


def test_mad_lo_s64_wraps():
    rng = np.random.default_rng(3)
    va = [(1 << 62) + 12345, -3, -(1 << 63), 7] + rng.integers(-2 ** 63, 2 ** 63 - 1, 28, dtype=np.int64).tolist()
    vb = [8, 5, -1, -(1 << 40)] + rng.integers(-2 ** 63, 2 ** 63 - 1, 28, dtype=np.int64).tolist()
    vc = [1, -1, 5, 1 << 62] + rng.integers(-2 ** 63, 2 ** 63 - 1, 28, dtype=np.int64).tolist()
    a, b, c = u64(va), u64(vb), u64(vc)
    out = lanewise("  mad.lo.s64 %rd10, %rd1, %rd2, %rd3;\n  mad.lo.u64 %rd11, %rd1, %rd2, %rd3;",
                   [a, b, c], np.uint64, 2)
    for i, (x, y, z) in enumerate(zip(a.tolist(), b.tolist(), c.tolist())):
        assert out[0, i] == (s64(x) * s64(y) + s64(z)) & M64
        assert out[1, i] == (x * y + z) & M64


def test_div_rem_s64_truncate_toward_zero():
    pairs = [(-7, 2), (7, -2), (-7, -2), (7, 2), (-1, 5), (1, -5), (-6, 3), (6, -3), (0, -9),
             (-(1 << 63) + 1, 3), ((1 << 63) - 1, -(1 << 40) - 7), (-(1 << 63), 7), (-(1 << 63), -(1 << 63)),
             (-123456789012345, 1000), (123456789012345, -1000), (5, 1 << 62)]
    a, b = u64([p[0] for p in pairs]), u64([p[1] for p in pairs])
    out = lanewise("  div.s64 %rd10, %rd1, %rd2;\n  rem.s64 %rd11, %rd1, %rd2;", [a, b], np.uint64, 2)
    for i, (x, y) in enumerate(pairs):
        q = tdiv(x, y)
        assert out[0, i] == q & M64, (x, y)
        assert out[1, i] == (x - q * y) & M64, (x, y)
    assert s64(out[0, 0]) == -3 and s64(out[1, 0]) == -1        # -7 / 2, -7 % 2
    assert s64(out[0, 1]) == -3 and s64(out[1, 1]) == 1         # 7 / -2, 7 % -2
    assert s64(out[0, 2]) == 3 and s64(out[1, 2]) == -1         # -7 / -2, -7 % -2


def test_div_rem_32_signed_and_unsigned():
    pairs = [(-7, 2), (7, -2), (-7, -2), (-1, 3), (-0x80000000, 3), (0x7FFFFFFF, -2), (100, 7), (-100, 7)]
    a, b = u32([p[0] for p in pairs]), u32([p[1] for p in pairs])
    out = lanewise("  div.s32 %r10, %r1, %r2;\n  rem.s32 %r11, %r1, %r2;\n"
                   "  div.u32 %r12, %r1, %r2;\n  rem.u32 %r13, %r1, %r2;", [a, b], np.uint32, 4)
    for i, (x, y) in enumerate(pairs):
        q = tdiv(x, y)
        assert out[0, i] == q & M32, (x, y)
        assert out[1, i] == (x - q * y) & M32, (x, y)
        ux, uy = x & M32, y & M32                      # .u32: the same bits as unsigned
        assert out[2, i] == ux // uy, (x, y)
        assert out[3, i] == ux % uy, (x, y)
    assert out[2, 0] == 0x7FFFFFFC and out[3, 0] == 1    # 0xFFFFFFF9 / 2 unsigned


SHIFTS = [0, 1, 4, 7, 31, 32, 33, 40, 63, 64, 65, 100, 255, 256, 0x7FFFFFFF, 0xFFFFFFFF]


def test_shifts_32_clamp_at_width():
    vals = [0x80000001, 0x7FFFFFFF, 0xF0F0F0F0, 1] * 8
    amts = [SHIFTS[i % len(SHIFTS)] for i in range(32)]
    a, s = u32(vals), u32(amts)
    out = lanewise("  shl.b32 %r10, %r1, %r2;\n  shr.u32 %r11, %r1, %r2;\n  shr.s32 %r12, %r1, %r2;\n"
                   "  shr.b32 %r13, %r1, %r2;", [a, s], np.uint32, 4)
    for i, (x, n) in enumerate(zip(a.tolist(), s.tolist())):
        assert out[0, i] == ((x << min(n, 32)) & M32), (hex(x), n)
        assert out[1, i] == (x >> min(n, 32)), (hex(x), n)
        assert out[2, i] == (s32(x) >> min(n, 32)) & M32, (hex(x), n)   # arithmetic: the sign fills
        assert out[3, i] == (x >> min(n, 32)), (hex(x), n)              # .b32 shr is logical


def test_shifts_64_arithmetic_and_clamp():
    vals = [0x8000000000000001, 0x7FFFFFFFFFFFFFFF, 0xF0F0F0F00F0F0F0F, 0xFFFFFFFFFFFFFFFE] * 8
    amts = [SHIFTS[i % len(SHIFTS)] for i in range(32)]
    a, s = u64(vals), u32(amts)
    out = lanewise("  shl.b64 %rd10, %rd1, %r2;\n  shr.u64 %rd11, %rd1, %r2;\n  shr.s64 %rd12, %rd1, %r2;",
                   [a, s], np.uint64, 3)
    for i, (x, n) in enumerate(zip(a.tolist(), s.tolist())):
        assert out[0, i] == ((x << min(n, 64)) & M64), (hex(x), n)
        assert out[1, i] == (x >> min(n, 64)), (hex(x), n)
        assert out[2, i] == (s64(x) >> min(n, 64)) & M64, (hex(x), n)
    assert out[2, 8] == M64          # 0x8000000000000001 >> 64 (clamped): all sign bits
    assert out[2, 9] == 0            # 0x7FFF... >> 65: zero


def bfe_ref(a, pos, ln, w, signed):
    """PTX ISA bfe pseudocode."""
    msb = w - 1
    pos, ln = pos & 0xFF, ln & 0xFF
    sbit = 0 if (not signed or ln == 0) else (a >> min(pos + ln - 1, msb)) & 1
    d = 0
    for i in range(w):
        bit = (a >> (pos + i)) & 1 if (i < ln and pos + i <= msb) else sbit
        d |= bit << i
    return d


BFE_CASES = [(0, 8), (4, 8), (28, 8), (31, 1), (0, 32), (8, 0), (3, 200), (0x105, 4), (5, 0x108),
             (16, 16), (1, 31), (60, 8), (0, 64), (33, 31), (63, 1), (7, 57)]


def test_bfe_unsigned_32_and_64():
    a32 = u32([0xDEADBEEF, 0x80000000, 0x12345678, 0xFFFFFFFF])
    a64 = u64([0xDEADBEEFCAFEBABE, 0x8000000000000000, 0x0123456789ABCDEF, M64])
    pos = u32([c[0] for c in BFE_CASES] * 2)
    ln = u32([c[1] for c in BFE_CASES] * 2)
    out = lanewise("  bfe.u32 %r10, %r1, %r2, %r3;", [a32, pos, ln], np.uint32)
    for i, (x, p, n) in enumerate(zip(np.resize(a32, 32).tolist(), pos.tolist(), ln.tolist())):
        assert out[0, i] == bfe_ref(x, p, n, 32, False), (hex(x), p, n)
    out = lanewise("  bfe.u64 %rd10, %rd1, %r2, %r3;", [a64, pos, ln], np.uint64)
    for i, (x, p, n) in enumerate(zip(np.resize(a64, 32).tolist(), pos.tolist(), ln.tolist())):
        assert out[0, i] == bfe_ref(x, p, n, 64, False), (hex(x), p, n)


def test_bfe_signed_in_range():
    cases = [c for c in BFE_CASES if (c[0] & 0xFF) < 32]
    a = u32([0xDEADBEEF, 0x80000000, 0x12345678, 0xFFFF0000])
    pos, ln = u32([c[0] for c in cases]), u32([c[1] for c in cases])
    out = lanewise("  bfe.s32 %r10, %r1, %r2, %r3;", [a, pos, ln], np.uint32)
    for i, (x, p, n) in enumerate(zip(a.tolist(), pos.tolist(), ln.tolist())):
        assert out[0, i] == bfe_ref(x, p, n, 32, True), (hex(x), p, n)


def test_bfe_signed_position_past_msb_replicates_sign():
    a = u32([0x80000000, 0xFFFFFFFF, 0x7FFFFFFF, 0x80000001])
    pos, ln = u32([32, 40, 32, 200]), u32([4, 8, 4, 1])
    out = lanewise("  bfe.s32 %r10, %r1, %r2, %r3;", [a, pos, ln], np.uint32)
    for i, (x, p, n) in enumerate(zip(a.tolist(), pos.tolist(), ln.tolist())):
        assert out[0, i] == bfe_ref(x, p, n, 32, True), (hex(x), p, n)


def test_min_max_signed_vs_unsigned():
    va = [-1, 0x80000000, 3, 0x7FFFFFFF, -5, 0]
    vb = [1, 0x7FFFFFFF, 5, 0x80000000, -3, -1]
    a, b = u32(va), u32(vb)
    out = lanewise("  min.s32 %r10, %r1, %r2;\n  max.s32 %r11, %r1, %r2;\n"
                   "  min.u32 %r12, %r1, %r2;\n  max.u32 %r13, %r1, %r2;", [a, b], np.uint32, 4)
    for i, (x, y) in enumerate(zip(a.tolist(), b.tolist())):
        assert out[0, i] == min(s32(x), s32(y)) & M32
        assert out[1, i] == max(s32(x), s32(y)) & M32
        assert out[2, i] == min(x, y)
        assert out[3, i] == max(x, y)
    assert out[0, 0] == M32 and out[2, 0] == 1                  # min(-1, 1): -1 signed, 1 unsigned
    a, b = u64([-1, 1 << 63, 5]), u64([1, 1, -5])
    out = lanewise("  min.s64 %rd10, %rd1, %rd2;\n  max.u64 %rd11, %rd1, %rd2;", [a, b], np.uint64, 2)
    for i, (x, y) in enumerate(zip(a.tolist(), b.tolist())):
        assert out[0, i] == min(s64(x), s64(y)) & M64
        assert out[1, i] == max(x, y)


def test_selp_and_setp_signed_vs_unsigned():
    va = [-1, 1, 0x80000000, 5, 5, 0, 0x7FFFFFFF, -2]
    vb = [1, -1, 0x7FFFFFFF, 5, 6, -1, 0x80000000, -3]
    a, b = u32(va), u32(vb)
    body = "\n".join(f"  setp.{c}.{t} %p{1 + j}, %r1, %r2;\n  selp.u32 %r{10 + j}, 1, 0, %p{1 + j};"
                     for j, (c, t) in enumerate([("lt", "s32"), ("lo", "u32"), ("lt", "u32"), ("hi", "u32"),
                                                 ("ge", "s32"), ("ls", "u32"), ("hs", "u32"), ("gt", "s32")]))
    body += "\n  selp.b32 %r18, %r1, %r2, %p1;"
    out = lanewise(body, [a, b], np.uint32, 9)
    for i, (x, y) in enumerate(zip(a.tolist(), b.tolist())):
        sx, sy = s32(x), s32(y)
        assert out[:8, i].tolist() == [sx < sy, x < y, x < y, x > y, sx >= sy, x <= y, x >= y, sx > sy], (x, y)
        assert out[8, i] == (x if sx < sy else y)
    assert out[0, 0] == 1 and out[1, 0] == 0                    # -1 < 1 signed; 0xFFFFFFFF < 1 is false unsigned
    a, b = u64([-1, 1 << 63, 3]), u64([1, 1, 3])
    out = lanewise("  setp.lt.s64 %p1, %rd1, %rd2;\n  selp.u32 %r10, 1, 0, %p1;\n"
                   "  setp.lo.u64 %p2, %rd1, %rd2;\n  selp.u32 %r11, 1, 0, %p2;\n"
                   "  selp.b64 %rd20, %rd1, %rd2, %p2;\n  cvt.u32.u64 %r12, %rd20;", [a, b], np.uint32, 3)
    for i, (x, y) in enumerate(zip(a.tolist(), b.tolist())):
        assert out[:, i].tolist() == [s64(x) < s64(y), x < y, (x if x < y else y) & M32]


def test_predicate_logic():
    va = [0, 0, 1, 1, 2, 0]
    vb = [0, 1, 0, 1, 7, 3]
    a, b = u32(va), u32(vb)
    out = lanewise("""
  setp.ne.u32 %p1, %r1, 0;
  setp.ne.u32 %p2, %r2, 0;
  and.pred %p3, %p1, %p2;
  or.pred %p4, %p1, %p2;
  xor.pred %p5, %p1, %p2;
  not.pred %p6, %p1;
  setp.lt.and.u32 %p7, %r1, %r2, %p2;
  setp.eq.or.u32 %p8, %r1, %r2, %p1;
  @%p6 mov.u32 %r20, 7;
  @!%p6 mov.u32 %r20, 9;
  selp.u32 %r10, 1, 0, %p3;
  selp.u32 %r11, 1, 0, %p4;
  selp.u32 %r12, 1, 0, %p5;
  selp.u32 %r13, 1, 0, %p6;
  selp.u32 %r14, 1, 0, %p7;
  selp.u32 %r15, 1, 0, %p8;
  mov.u32 %r16, %r20;""", [a, b], np.uint32, 7)
    for i, (x, y) in enumerate(zip(a.tolist(), b.tolist())):
        p, q = x != 0, y != 0
        assert out[:, i].tolist() == [p and q, p or q, p != q, not p, (x < y) and q, (x == y) or p,
                                      7 if not p else 9], (x, y)
