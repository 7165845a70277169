"""Scaffolding of the PTX emulator's ISA tests: tiny hand-written PTX kernels (`.version 8.0`,
`.target sm_90a`) run through `run_ptx` with the real launch ABI (a rank-1 tensor is 5 `.u64` params:
allocated pointer, aligned pointer, offset, size, stride), and exact reference arithmetic (Python
integers, `fractions.Fraction` rounded by hand in each rounding mode)."""
from __future__ import annotations

from fractions import Fraction

import numpy as np

from tessera.runtime.emulator import run_ptx

M32, M64 = (1 << 32) - 1, (1 << 64) - 1
LANES = np.arange(32)

# -- kernel scaffolding ------------------------------------------------------------------------

LDM_SHARED = ".shared .align 16 .b8 smem[512];\n\n"   # a small shared buffer (ldmatrix, race tests)
HEADER = ".version 8.0\n.target sm_90a\n.address_size 64\n\n"
DECLS = """  .reg .pred %p<16>;
  .reg .b16 %h<32>;
  .reg .b32 %r<64>;
  .reg .b64 %rd<64>;
  .reg .f32 %f<64>;
  .reg .f64 %fd<16>;
"""


def module(body, tensors=(), scalars=(), shared=""):
    """A module with one `.entry k`: per tensor t the 5 ABI params (t_ptr is loaded into %rd50+i),
    then the scalars; %r0 = %tid.x. Register conventions of the tests: inputs 1..9, results 10..19,
    temporaries 20..39, addresses %rd40..49."""
    params = []
    for t in tensors:
        params += [f"    .param .u64 {t}_alloc", f"    .param .u64 {t}_ptr", f"    .param .u64 {t}_off",
                   f"    .param .u64 {t}_size0", f"    .param .u64 {t}_stride0"]
    params += [f"    .param .{ty} {nm}" for nm, ty in scalars]
    loads = "".join(f"  ld.param.u64 %rd{50 + i}, [{t}_ptr];\n" for i, t in enumerate(tensors))
    return (HEADER + shared + ".visible .entry k(\n" + ",\n".join(params) + "\n)\n{\n" + DECLS
            + "  mov.u32 %r0, %tid.x;\n  cvt.u64.u32 %rd40, %r0;\n" + loads + body.strip("\n") + "\n  ret;\n}\n")


def launch(ptx, tensors=(), scalars=(), num_warps=1, shared_bytes=0, grid=(1,), **kw):
    """tensors: [(name, 1-D array)], scalars: [(name, abi, value)], in the order of the params."""
    meta = {"args": [{"kind": "tensor", "name": n, "rank": 1, "dtype": str(a.dtype)} for n, a in tensors]
            + [{"kind": "scalar", "name": n, "abi": abi} for n, abi, _ in scalars],
            "num_warps": num_warps, "shared_bytes": shared_bytes, "tma": []}
    args = [a for _, a in tensors] + [v for _, _, v in scalars]
    return run_ptx(ptx, "k", meta, "sm_90a", grid, args, **kw)


_KIND = {np.dtype(np.uint32): ("u32", "%r", 4), np.dtype(np.int32): ("s32", "%r", 4),
         np.dtype(np.uint64): ("u64", "%rd", 8), np.dtype(np.int64): ("s64", "%rd", 8),
         np.dtype(np.float32): ("f32", "%f", 4), np.dtype(np.float64): ("f64", "%fd", 8),
         np.dtype(np.uint16): ("u16", "%h", 2)}


def lanewise(body, inputs, out_dtype, nout=1, **kw):
    """Thread t of one warp loads inputs[i][t] into register <class>(1+i) (%r, %rd, %f, %fd or %h by
    dtype), runs `body`, and stores <class>(10+k) to out[k, t]. Returns out (nout, 32)."""
    inputs = [np.resize(np.asarray(a), 32) for a in inputs]
    names = [f"in{i}" for i in range(len(inputs))] + ["out"]
    lines = []
    for i, a in enumerate(inputs):
        ty, cls, nb = _KIND[a.dtype]
        lines += [f"  mad.lo.s64 %rd{41 + i}, %rd40, {nb}, %rd{50 + i};",
                  f"  ld.global.{ty} {cls}{1 + i}, [%rd{41 + i}];"]
    lines.append(body)
    ty, cls, nb = _KIND[np.dtype(out_dtype)]
    lines.append(f"  mad.lo.s64 %rd49, %rd40, {nb}, %rd{50 + len(inputs)};")
    lines += [f"  st.global.{ty} [%rd49+{k * 32 * nb}], {cls}{10 + k};" for k in range(nout)]
    out = np.zeros(nout * 32, out_dtype)
    launch(module("\n".join(lines), names), list(zip(names, [*inputs, out])), **kw)
    return out.reshape(nout, 32)


def line_of(ptx, needle):
    hits = [i for i, s in enumerate(ptx.splitlines(), 1) if needle in s]
    assert len(hits) == 1, (needle, hits)
    return hits[0]


def u32(vals):
    return np.resize(np.array([int(v) & M32 for v in vals], np.uint32), 32)


def u64(vals):
    return np.resize(np.array([int(v) & M64 for v in vals], np.uint64), 32)


def s32(x):
    x = int(x) & M32
    return x - (1 << 32) if x >> 31 else x


def s64(x):
    x = int(x) & M64
    return x - (1 << 64) if x >> 63 else x


def f32_bits(vals):
    return np.asarray(vals, np.float32).view(np.uint32)


def bits_f32(vals):
    return np.resize(np.array([int(v) for v in vals], np.uint32), 32).view(np.float32)


def round_float(x, mant, mode="rn"):
    """An exact rational rounded to a binary float with `mant` explicit mantissa bits (normal range),
    with a PTX rounding mode; returned as a Python float (exact)."""
    x = Fraction(x)
    if x == 0:
        return 0.0
    neg = x < 0
    m = -x if neg else x
    e = m.numerator.bit_length() - m.denominator.bit_length()
    if Fraction(2) ** e > m:
        e -= 1
    ulp = Fraction(2) ** (e - mant)
    q, r = divmod(m, ulp)
    half = ulp / 2
    up = {"rn": r > half or (r == half and q % 2 == 1), "rz": False,
          "rm": neg and r != 0, "rp": (not neg) and r != 0}[mode]
    v = float((q + up) * ulp)
    return -v if neg else v


def f32_round_bits(x, mode="rn"):
    return int(np.float32(round_float(x, 23, mode)).view(np.uint32))


def bf16_round_bits(x, mode="rn"):
    return int(np.float32(round_float(x, 7, mode)).view(np.uint32)) >> 16


def bf16_value(bits):
    return float(np.uint32(int(bits) << 16).view(np.float32))
