"""tessera against Triton on the same kernels, compile-only (no GPU): what each compiler's code costs.

Each kernel is compiled by tessera (`ts.compile`) and by Triton (`triton.compile` on an ASTSource
specialised as Triton's JIT would specialise it for contiguous arrays: pointers and integers that
are multiples of 16 get `tt.divisibility=16`, integers equal to 1 become constants) for sm_80 and
sm_90a, with the same block sizes, num_warps and num_stages. Both cubins come from the same ptxas
(tessera's; Triton is pointed at it with TRITON_PTXAS_PATH / TRITON_PTXAS_BLACKWELL_PATH; Triton
adds its own `--regAllocOptLevel=2`). Measured per kernel and target, tessera / Triton side by side:

- registers, spill-store bytes (`ptxas -v`), shared memory bytes (dynamic + static);
- static SASS instructions from Triton's bundled `nvdisasm`, without NOP padding and the `BRA`
  self-loop after EXIT. Memory-bound kernels: the whole kernel divided by the elements one program
  handles. GEMMs: the main K loop (the smallest backward branch whose body holds HMMA/HGMMA), its
  instructions divided by the BK steps one iteration does; the steps come from the MMA instructions'
  shapes (HMMA per warp, HGMMA per warpgroup) against BM·BN·BK, and the loop's MMA count is printed;
- one launch in tessera's PTX emulator (warp instructions without mbarrier spin probes, which are
  printed apart, global requests, 32-byte sectors per request, shared bank conflicts) at small shapes on 256-byte-aligned arrays, Triton's PTX (its `.loc`
  lines stripped) through the same low-level Machine; the outputs of the two runs are compared.
Static counts are a proxy: no GPU timing is involved.

    python benchmarks/codegen_vs_triton.py [--target sm_80|sm_90a|both] [--json PATH] [--skip-emulator]
"""
from __future__ import annotations

import argparse
import atexit
import contextlib
import io
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time

_TMP = tempfile.mkdtemp(prefix="codegen-vs-triton-")
atexit.register(shutil.rmtree, _TMP, True)
os.environ["TESSERA_CACHE_DIR"] = os.path.join(_TMP, "tessera")
os.environ["TRITON_CACHE_DIR"] = os.path.join(_TMP, "triton")
os.environ["TRITON_DUMP_PTXAS_LOG"] = "1"         # Triton prints ptxas -v; captured per compile
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")

try:
    import triton
    import triton.language as tl
    from triton.backends.compiler import BaseBackend, GPUTarget
    from triton._C.libtriton import native_specialize_impl
except Exception as e:  # noqa: BLE001
    sys.exit(f"codegen_vs_triton: Triton is not importable ({type(e).__name__}: {e}); install it in the venv "
             "(`pip install triton`) to run this benchmark")

import ml_dtypes  # noqa: E402
import numpy as np  # noqa: E402

import tessera as ts  # noqa: E402
from tessera import tile  # noqa: E402
from tessera.backends.nvidia.ptxas import find_ptxas  # noqa: E402
from tessera.kernels import matmul, row_softmax, scale  # noqa: E402
from tessera.runtime.emulator.launch import parsed  # noqa: E402
from tessera.runtime.emulator.machine import Machine  # noqa: E402
from tessera.runtime.emulator.memory import GlobalMemory  # noqa: E402
from tessera.runtime.emulator.report import EmulationReport  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import emu_cases  # noqa: E402

os.environ["TRITON_PTXAS_PATH"] = os.environ["TRITON_PTXAS_BLACKWELL_PATH"] = find_ptxas()
NVDISASM = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "nvdisasm")
bf16 = ml_dtypes.bfloat16


# ---- tessera kernels defined here ------------------------------------------------------------------
@ts.kernel
def axpb2d(x: tile.Tensor["R", "C", ts.f32], out: tile.Tensor["R", "C", ts.f32], a: float, b: float,
           BR: ts.constexpr = 32, BC: ts.constexpr = 128):
    r0, c0 = tile.program_id(0) * BR, tile.program_id(1) * BC
    tile.store(out[r0:r0 + BR, c0:c0 + BC], a * tile.load(x[r0:r0 + BR, c0:c0 + BC]) + b)


@ts.kernel
def row_sum(x: tile.Tensor["R", "C", ts.f32], out: tile.Tensor["R", ts.f32], BLOCK: ts.constexpr = 1024):
    r = tile.program_id(0)
    tile.store(out[r], tile.sum(tile.load(x[r, 0:BLOCK], other=0.0), axis=0))


# ---- the same kernels in idiomatic Triton ----------------------------------------------------------
@triton.jit
def tr_scale(x, out, alpha, N, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    tl.store(out + offs, tl.load(x + offs, mask=mask) * alpha, mask=mask)


@triton.jit
def tr_axpb2d(x, out, a, b, R, C, stride_xr, stride_xc, stride_or, stride_oc, BR: tl.constexpr, BC: tl.constexpr):
    rows = tl.program_id(0) * BR + tl.arange(0, BR)
    cols = tl.program_id(1) * BC + tl.arange(0, BC)
    mask = (rows[:, None] < R) & (cols[None, :] < C)
    v = tl.load(x + rows[:, None] * stride_xr + cols[None, :] * stride_xc, mask=mask)
    tl.store(out + rows[:, None] * stride_or + cols[None, :] * stride_oc, a * v + b, mask=mask)


@triton.jit
def tr_softmax(x, y, stride_x, stride_y, C, BLOCK: tl.constexpr):
    r = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    v = tl.load(x + r * stride_x + cols, mask=cols < C, other=-float("inf"))
    e = tl.exp(v - tl.max(v, axis=0))
    tl.store(y + r * stride_y + cols, e / tl.sum(e, axis=0), mask=cols < C)


@triton.jit
def tr_row_sum(x, out, stride_x, C, BLOCK: tl.constexpr):
    r = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    tl.store(out + r, tl.sum(tl.load(x + r * stride_x + cols, mask=cols < C, other=0.0), axis=0))


@triton.jit
def tr_matmul(a, b, c, M, N, K, stride_am, stride_ak, stride_bk, stride_bn, stride_cm, stride_cn,
              BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
    pm, pn = tl.program_id(0), tl.program_id(1)
    offs_am = (pm * BM + tl.arange(0, BM)) % M
    offs_bn = (pn * BN + tl.arange(0, BN)) % N
    offs_k = tl.arange(0, BK)
    a_ptrs = a + offs_am[:, None] * stride_am + offs_k[None, :] * stride_ak
    b_ptrs = b + offs_k[:, None] * stride_bk + offs_bn[None, :] * stride_bn
    acc = tl.zeros((BM, BN), dtype=tl.float32)
    for k in range(0, tl.cdiv(K, BK)):
        av = tl.load(a_ptrs, mask=offs_k[None, :] < K - k * BK, other=0.0)
        bv = tl.load(b_ptrs, mask=offs_k[:, None] < K - k * BK, other=0.0)
        acc = tl.dot(av, bv, acc)
        a_ptrs += BK * stride_ak
        b_ptrs += BK * stride_bk
    offs_cm = pm * BM + tl.arange(0, BM)
    offs_cn = pn * BN + tl.arange(0, BN)
    tl.store(c + offs_cm[:, None] * stride_cm + offs_cn[None, :] * stride_cn, acc,
             mask=(offs_cm[:, None] < M) & (offs_cn[None, :] < N))


@triton.jit
def _tr_delta_term(tgt, s, w, stride_w, c, dscale, offs, rmask, D: tl.constexpr):
    delta = tgt - tl.load(s + offs, mask=rmask, other=0.0)                     # bf16, as tessera's subf
    cols = tl.arange(0, D)
    z = tl.dot(delta, tl.load(w + cols[:, None] * stride_w + cols[None, :])) * dscale
    e = tl.exp(-tl.abs(z))                                                      # tessera's sigmoid_safe
    pos = 1.0 / (1.0 + e)
    return c * delta.to(tl.float32) * tl.where(z >= 0, pos, e * pos)


@triton.jit
def tr_fused_delta_4(t, s0, s1, s2, s3, w0, w1, w2, w3, coeffs, out, R, stride_r, stride_w,
                     DS0: tl.constexpr, DS1: tl.constexpr, DS2: tl.constexpr, DS3: tl.constexpr,
                     BLOCK_R: tl.constexpr, D: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    offs = rows[:, None] * stride_r + tl.arange(0, D)[None, :]
    rmask = rows[:, None] < R
    tgt = tl.load(t + offs, mask=rmask, other=0.0)
    acc = _tr_delta_term(tgt, s0, w0, stride_w, tl.load(coeffs + 0), DS0, offs, rmask, D)
    acc += _tr_delta_term(tgt, s1, w1, stride_w, tl.load(coeffs + 1), DS1, offs, rmask, D)
    acc += _tr_delta_term(tgt, s2, w2, stride_w, tl.load(coeffs + 2), DS2, offs, rmask, D)
    acc += _tr_delta_term(tgt, s3, w3, stride_w, tl.load(coeffs + 3), DS3, offs, rmask, D)
    tl.store(out + offs, acc, mask=rmask)


# ---- the cases -------------------------------------------------------------------------------------
def _el(a):
    return [s // a.itemsize for s in a.strides]


def _aligned(a):
    """A copy of `a` on a 256-byte boundary, like cudaMalloc's (the emulator keeps the host's address mod 256)."""
    if not isinstance(a, np.ndarray):
        return a
    raw = np.empty(a.nbytes + 256, np.uint8)
    off = (-raw.ctypes.data) % 256
    out = raw[off:off + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out


def _rnd(rng, shape, dt=np.float32):
    return rng.standard_normal(shape).astype(dt)


def _z(*shape, dt=np.float32):
    return np.zeros(shape, dt)


def _case(name, tk, tr, ce, compile_args, emu_args, grid, targs, out=1, per=None, warps=4, **kw):
    return dict(name=name, tk=tk, tr=tr, ce=ce, compile_args=compile_args, emu_args=emu_args, grid=grid,
                targs=targs, out=out, per=per, warps=warps, stages=3, **kw)


def _gemm_case(name, tk, dt, BM, BN, BK, warps):
    def args(n, rng):
        return [_rnd(rng, (n, n), dt), _rnd(rng, (n, n), dt), _z(n, n)]

    def targs(a, b, c):
        return dict(a=a, b=b, c=c, M=a.shape[0], N=b.shape[1], K=a.shape[1], stride_am=_el(a)[0], stride_ak=_el(a)[1],
                    stride_bk=_el(b)[0], stride_bn=_el(b)[1], stride_cm=_el(c)[0], stride_cn=_el(c)[1])
    return _case(name, tk, tr_matmul, dict(BM=BM, BN=BN, BK=BK), lambda r: args(1024, r), lambda r: args(256, r),
                 (256 // BM, 256 // BN), targs, out=2, warps=warps, gemm=(BM, BN, BK))


def cases():
    gdn_k, gdn_make, gdn_ce = emu_cases._fused(4, False, False)
    gdn_tce = {f"DS{i}": math.exp(-0.1 * gdn_ce[f"D{i}"]) for i in range(4)}
    gdn_names = ["t", "s0", "s1", "s2", "s3", "w0", "w1", "w2", "w3", "coeffs", "out"]
    return [
        _case("scale bf16 (2048/prog)", scale, tr_scale, dict(BLOCK=2048),
              lambda r: [_z(1 << 20, dt=bf16), _z(1 << 20, dt=bf16), 2.0],
              lambda r: [_rnd(r, 8192, bf16), _z(8192, dt=bf16), 2.0], (4,),
              lambda x, o, al: dict(x=x, out=o, alpha=al, N=x.size), per=2048),
        _case("axpb 2-D f32 (32x128/prog)", axpb2d, tr_axpb2d, dict(BR=32, BC=128),
              lambda r: [_z(2048, 2048), _z(2048, 2048), 1.5, 0.25],
              lambda r: [_rnd(r, (64, 256)), _z(64, 256), 1.5, 0.25], (2, 2),
              lambda x, o, a, b: dict(x=x, out=o, a=a, b=b, R=x.shape[0], C=x.shape[1], stride_xr=_el(x)[0],
                                      stride_xc=_el(x)[1], stride_or=_el(o)[0], stride_oc=_el(o)[1]), per=32 * 128),
        _case("row softmax f32 (1024/prog)", row_softmax, tr_softmax, dict(BLOCK=1024),
              lambda r: [_z(4096, 1024), _z(4096, 1024)], lambda r: [_rnd(r, (8, 1024)), _z(8, 1024)], (8,),
              lambda x, y: dict(x=x, y=y, stride_x=_el(x)[0], stride_y=_el(y)[0], C=x.shape[1]), per=1024),
        _case("row sum f32 (1024/prog)", row_sum, tr_row_sum, dict(BLOCK=1024),
              lambda r: [_z(4096, 1024), _z(4096)], lambda r: [_rnd(r, (8, 1024)), _z(8)], (8,),
              lambda x, o: dict(x=x, out=o, stride_x=_el(x)[0], C=x.shape[1]), per=1024),
        _gemm_case("GEMM bf16 128x128x64 w4", matmul, bf16, 128, 128, 64, 4),
        _gemm_case("GEMM bf16 128x256x64 w8", matmul, bf16, 128, 256, 64, 8),
        _gemm_case("GEMM f16 128x128x64 w4", matmul, np.float16, 128, 128, 64, 4),
        _gemm_case("GEMM f16 128x256x64 w8", matmul, np.float16, 128, 256, 64, 8),
        _case("GDN fused_delta_4 (32x64/prog)", gdn_k, tr_fused_delta_4, gdn_ce, gdn_make, gdn_make, (4,),
              lambda *a: dict(zip(gdn_names, a), R=a[0].shape[0], stride_r=_el(a[0])[0], stride_w=_el(a[5])[0]),
              out=10, per=32 * 64, tce=dict(gdn_tce, BLOCK_R=32, D=64)),
        # the block the graph plan launches on sm_90a: the gating GEMMs on wgmma (Triton's tl.dot too)
        _case("GDN fused_delta_4 (64x64/prog)", gdn_k, tr_fused_delta_4, dict(gdn_ce, BLOCK_R=64), gdn_make, gdn_make,
              (2,), lambda *a: dict(zip(gdn_names, a), R=a[0].shape[0], stride_r=_el(a[0])[0], stride_w=_el(a[5])[0]),
              out=10, per=64 * 64, tce=dict(gdn_tce, BLOCK_R=64, D=64)),
    ]


# ---- Triton compilation ----------------------------------------------------------------------------
_TT = {np.dtype(bf16): "bf16", np.dtype(np.float16): "fp16", np.dtype(np.float32): "fp32"}


def triton_compile(fn, values, constexprs, target, warps, stages):
    """`values`: name -> NumPy array / int / float for every runtime argument."""
    sig, attrs, consts = {}, {}, dict(constexprs)
    for i, name in enumerate(fn.arg_names):
        if name in consts:
            sig[name] = "constexpr"
            continue
        v = values[name]
        if isinstance(v, np.ndarray):
            sig[name], spec = "*" + _TT[v.dtype], "D" if v.ctypes.data % 16 == 0 else ""
        else:
            sig[name], spec = native_specialize_impl(BaseBackend, v, False, True, True)
            if sig[name] == "constexpr":
                consts[name] = v
                continue
        attrs[(i,)] = BaseBackend.parse_attr(spec or "")
    src = triton.compiler.ASTSource(fn=fn, signature=sig, constexprs=consts, attrs=attrs)
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        k = triton.compile(src, target=GPUTarget("cuda", 80 if target == "sm_80" else 90, 32),
                           options={"num_warps": warps, "num_stages": stages})
    regs, spill, smem = [int(m.group(1)) if m else None for m in (re.search(rx, log.getvalue()) for rx in (
        r"Used (\d+) registers", r"(\d+) bytes spill stores", r"(\d+) bytes smem"))]
    return k, sig, dict(registers=regs, spill=spill or 0, smem=k.metadata.shared + (smem or 0))


# ---- SASS ------------------------------------------------------------------------------------------
_INS = re.compile(r"/\*[0-9a-f]{4,}\*/\s+(.*?)\s*;")
_LABEL = re.compile(r"^(\.L_x_\d+):")


def _opcode(text):
    return re.sub(r"^@!?U?P[T\d]+\s+", "", text).split()[0]


def sass(cubin):
    """Instructions (text) and label -> instruction index, NOPs and the self-loop after EXIT dropped."""
    path = os.path.join(_TMP, "k.cubin")
    with open(path, "wb") as f:
        f.write(cubin)
    out = subprocess.run([NVDISASM, "-c", path], capture_output=True, text=True, check=True).stdout
    ins, labels, pending = [], {}, []
    for line in out.splitlines():
        m = _LABEL.match(line.strip())
        if m:
            pending.append(m.group(1))
            continue
        m = _INS.search(line)
        if not m:
            continue
        t = m.group(1)
        op = _opcode(t)
        if op == "NOP" or (op == "BRA" and any(f"`({lb})" in t for lb in pending)):
            continue
        for lb in pending:
            labels[lb] = len(ins)
        pending = []
        ins.append(t)
    return ins, labels


def _is_mma(op):
    return re.match(r"(HMMA|HGMMA|IMMA)\.", op) is not None


def _mma_work(op, warps):
    """M·N·K one static MMA instruction does for the whole CTA (HMMA: every warp; HGMMA: every warpgroup)."""
    m = re.match(r"HGMMA\.(\d+)x(\d+)x(\d+)", op)
    if m:
        return int(m.group(1)) * int(m.group(2)) * int(m.group(3)) * (warps // 4)
    m = re.match(r"HMMA\.168(16|8)", op)
    return 16 * 8 * int(m.group(1)) * warps if m else 0


def sass_stats(cubin, case):
    ins, labels = sass(cubin)
    r = dict(sass=len(ins))
    if case.get("gemm") is None:
        return dict(r, per_unit=len(ins) / case["per"], mma=sum(1 for t in ins if _is_mma(_opcode(t))))
    best = None
    for j, t in enumerate(ins):
        m = re.search(r"BRA(?:\.\S+)?\s+`\((\.L_x_\d+)\)", t)
        if m and labels.get(m.group(1), j + 1) <= j:
            body = ins[labels[m.group(1)]:j + 1]
            if any(_is_mma(_opcode(x)) for x in body) and (best is None or len(body) < len(best)):
                best = body
    if best is None:
        return dict(r, per_unit=None, mma=0, ksteps=None)
    BM, BN, BK = case["gemm"]
    ops = [_opcode(x) for x in best if _is_mma(_opcode(x))]
    ksteps = sum(_mma_work(o, case["warps"]) for o in ops) / (BM * BN * BK)
    return dict(r, per_unit=len(best) / ksteps if ksteps else None, mma=len(ops), ksteps=ksteps, loop=len(best),
                mma_op=ops[0])


# ---- the emulator on Triton's PTX ------------------------------------------------------------------
def emulate_triton(k, sig, values, grid, arch, warps, out_name):
    # The emulator's parser reads `;`-terminated statements: Triton's `.loc` debug directives (no `;`) would
    # swallow the instruction after them, so they are dropped (they carry no semantics).
    kernel = parsed(re.sub(r"^\s*\.loc\s[^\n]*$", "", k.asm["ptx"], flags=re.M), k.metadata.name)
    gmem, addrs, params = GlobalMemory(), {}, []
    for name, ty in sig.items():
        if ty == "constexpr":
            continue
        v = values[name]
        if ty.startswith("*"):
            addrs[name] = gmem.alloc(np.ascontiguousarray(v).view(np.uint8).ravel(), name)
            params.append(addrs[name])
        elif ty == "fp32":
            params.append(struct.unpack("<I", struct.pack("<f", float(v)))[0])
        else:
            params.append(int(v) & 0xFFFFFFFF)
    extra = len(kernel.params) - len(params)          # global / profile scratch pointers
    if extra not in (0, 1, 2) or k.metadata.global_scratch_size or k.metadata.profile_scratch_size:
        raise RuntimeError(f"unexpected parameters: PTX has {len(kernel.params)}, signature {len(params)}")
    params += [0] * extra
    g, block = tuple(grid) + (1,) * (3 - len(grid)), (warps * 32, 1, 1)
    report = EmulationReport(kernel.name, arch, g, block, True)
    m = Machine(kernel, gmem, g, block, params, dynamic_shared=k.metadata.shared, checks=True, report=report,
                arch=arch, counters=True)
    t0 = time.perf_counter()
    m.run()
    report.seconds, report.steps = time.perf_counter() - t0, m.steps
    o = values[out_name]
    return report, gmem.bytes_at(addrs[out_name], o.nbytes).view(o.dtype).reshape(o.shape)


def _short(e):
    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
    m = re.search(r"does not implement (?:the form )?`([^`]+)`", msg)
    return f"no `{m.group(1)}`" if m else msg[:60]


def _counters(rep):
    return dict(warp_instructions=rep.warp_instructions, spin_probes=rep.spin_probes, global_requests=rep.global_requests,
                sectors_per_request=round(rep.sectors_per_request, 2), shared_bank_conflicts=rep.shared_bank_conflicts,
                seconds=round(rep.seconds, 2), findings=sorted(rep.finding_counts.items()))


# ---- one case on one target ------------------------------------------------------------------------
def measure(case, target, emulate):
    rng = np.random.default_rng(0)
    cargs = [_aligned(a) for a in case["compile_args"](rng)]
    opts = dict(num_warps=case["warps"], **({"num_stages": case["stages"]} if case.get("gemm") else {}))
    try:
        ck = ts.compile(case["tk"], *cargs, target=target, **opts, **case["ce"])
    except Exception:  # noqa: BLE001  (another engineer edits the compiler meanwhile: retry once)
        ck = ts.compile(case["tk"], *cargs, target=target, **opts, **case["ce"])
    md = ck.metadata
    tes = dict(registers=md.get("registers"), spill=md.get("spill_stores"),
               smem=md.get("shared_bytes", 0) + md.get("static_smem", 0), **sass_stats(ck.asm["cubin"], case))
    tk, sig, tri = triton_compile(case["tr"], case["targs"](*cargs), case.get("tce", case["ce"]), target,
                                  case["warps"], case["stages"])
    tri.update(sass_stats(tk.asm["cubin"], case))
    row = dict(kernel=case["name"], target=target, grid=list(case["grid"]), tessera=tes, triton=tri)
    if not emulate:
        return row
    eargs = [_aligned(a) for a in case["emu_args"](np.random.default_rng(1))]
    targs = [_aligned(a) for a in eargs]
    try:
        tes["emu"] = _counters(ck.emulate(case["grid"], *eargs, **case["ce"]))
    except Exception as e:  # noqa: BLE001
        tes["emu"] = dict(error=_short(e))
    tvals = case["targs"](*targs)
    out_name = [n for n, v in tvals.items() if v is targs[case["out"]]][0]
    try:
        trep, tout = emulate_triton(tk, sig, tvals, case["grid"], target, case["warps"], out_name)
        tri["emu"] = _counters(trep)
    except Exception as e:  # noqa: BLE001
        tri["emu"] = dict(error=_short(e))
    if case.get("gemm"):
        for side, run in (("tessera", lambda a, b, c: ck.emulate((1, 1), a, b, c, **case["ce"]).warp_instructions),
                          ("triton", lambda a, b, c: emulate_triton(tk, sig, case["targs"](a, b, c), (1, 1), target,
                                                                     case["warps"], "c")[0].warp_instructions)):
            row[side]["emu"]["k_step"] = _dynamic_k_step(case, run)
    if "error" not in tes["emu"] and "error" not in tri["emu"]:
        a, b = eargs[case["out"]].astype(np.float32), tout.astype(np.float32)
        row["outputs_match"] = bool(np.allclose(a, b, rtol=2e-2, atol=2e-2))
        row["max_abs_diff"] = float(np.abs(a - b).max())
    return row


def _dynamic_k_step(case, run):
    """Warp instructions the emulator executes per K step per warp in the main loop: one CTA at K = 4·BK
    and K = 8·BK, the difference over 4 K steps and the warps (prologue and epilogue cancel)."""
    BM, BN, BK = case["gemm"]
    rng, counts = np.random.default_rng(2), []
    try:
        for k in (4 * BK, 8 * BK):
            dt = bf16 if "bf16" in case["name"] else np.float16
            args = [_aligned(x) for x in (_rnd(rng, (BM, k), dt), _rnd(rng, (k, BN), dt), _z(BM, BN))]
            counts.append(run(*args))
    except Exception as e:  # noqa: BLE001
        return dict(error=_short(e))
    return (counts[1] - counts[0]) / 4 / case["warps"]


# ---- output ----------------------------------------------------------------------------------------
def _f(v, nd=0):
    if v is None:
        return "–"
    return f"{v:,.{nd}f}" if isinstance(v, float) else f"{v:,}"


def _pair(row, key, nd=0):
    return f"{_f(row['tessera'].get(key), nd)} / {_f(row['triton'].get(key), nd)}"


def print_tables(rows, target, emulate):
    rs = [r for r in rows if r["target"] == target]
    print(f"\n### {target}: static (tessera / Triton)\n")
    print("| kernel | regs | spill B | smem B | SASS instr | SASS per elem or per K step | "
          "MMA in K loop (K steps/iter) |")
    print("|---|---|---|---|---|---|---|")
    for r in rs:
        t, p = r["tessera"], r["triton"]
        unit = "per K step" if t.get("ksteps") is not None or p.get("ksteps") is not None else "per elem"
        mma = " / ".join(f"{d['mma']}" + (f" {d['mma_op'].split('.')[0]} ({_f(d.get('ksteps'), 0)})"
                                           if d.get("mma_op") else "") for d in (t, p))
        print(f"| {r['kernel']} | {_pair(r, 'registers')} | {_pair(r, 'spill')} | {_pair(r, 'smem')} | "
              f"{_pair(r, 'sass')} | {_pair(r, 'per_unit', 2 if unit == 'per elem' else 0)} {unit} | {mma} |")
    if not emulate:
        return
    print(f"\n### {target}: one emulated launch (tessera / Triton)\n")
    print("| kernel | grid | warp instructions | global requests | sectors / request | shared bank conflicts | "
          "GEMM K loop: warp instr per K step per warp | outputs match, notes |")
    print("|---|---|---|---|---|---|---|---|")
    keys = ("warp_instructions", "global_requests", "sectors_per_request", "shared_bank_conflicts")
    for r in rs:
        sides = (r["tessera"]["emu"], r["triton"]["emu"])
        cells = [" / ".join("n/a" if "error" in e else _f(e[k], 2 if k == "sectors_per_request" else 0)
                            for e in sides) for k in keys]
        steps = [e.get("k_step") for e in sides]
        cells.append("–" if steps == [None, None] else " / ".join(
            "n/a" if not isinstance(x, (int, float)) else _f(x, 0) for x in steps))
        notes = []
        if "outputs_match" in r:
            notes.append(("yes" if r["outputs_match"] else "NO") + f" (max diff {r['max_abs_diff']:.2g})")
        for who, e in zip(("tessera", "Triton"), sides):
            if "error" in e:
                notes.append(f"{who} n/a: {e['error']}")
            elif e["findings"]:
                notes.append(f"{who} findings: " + ", ".join(f"{k} ×{n}" for k, n in e["findings"]))
            if e.get("spin_probes"):
                notes.append(f"{who}: {e['spin_probes']:,} mbarrier spin probes not counted")
        print(f"| {r['kernel']} | {r['grid']} | " + " | ".join(cells) + f" | {'; '.join(notes) or '–'} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="both", choices=["sm_80", "sm_90a", "both"])
    ap.add_argument("--json")
    ap.add_argument("--skip-emulator", action="store_true")
    args = ap.parse_args()
    targets = ["sm_80", "sm_90a"] if args.target == "both" else [args.target]
    t0 = time.perf_counter()
    rows = [measure(case, target, not args.skip_emulator) for target in targets for case in cases()]
    ptxas = subprocess.run([find_ptxas(), "--version"], capture_output=True, text=True).stdout.split("\n")[-2]
    print(f"tessera {getattr(ts, '__version__', '?')} vs Triton {triton.__version__}; ptxas for both: "
          f"{find_ptxas()} ({ptxas}); nvdisasm: Triton's bundled")
    for target in targets:
        print_tables(rows, target, not args.skip_emulator)
    print(f"\n(total {time.perf_counter() - t0:.1f} s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
