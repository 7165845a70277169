"""sm_90a: `tile.mma` on tiles already in registers (outside a pipelined K loop, e.g. the GDN gating
GEMM `(t − s) @ W`) on wgmma.

Applies when the CTA is one or two warpgroups splitting M (64-row blocks per warpgroup), N is a multiple
of 8 up to 256, K a multiple of 64, the operands 16-bit, and a warpgroup holds at most 128 accumulator
registers per thread. The operands are stored from their blocked fragments into the layouts the K-loop
path gets from TMA: A K-major in M×64 boxes, B (K×N row-major, read transposed) in 64×64 boxes, both
128-byte swizzled (16-byte chunk c of a 128-byte row r at chunk c ^ (r % 8)): a run of a thread's
fragment stays one 16-byte store. Then `fence.proxy.async` (the stores are generic-proxy writes that
wgmma reads through the async proxy) and a CTA barrier; each warpgroup issues, per 64-row accumulator,
one wgmma chain over the K/64 box pairs; after `wgmma.wait_group 0` the accumulators go through shared
memory (rows N + 8 words apart) into the blocked layout. One shared region serves every such mma of a
kernel (each one finishes reading it before the next one writes).
"""
from __future__ import annotations

from mlir import ir
from mlir.dialects import arith, builtin, gpu, llvm, memref, nvgpu, nvvm

from . import fragments as F, runs
from .wgmma import PAD, store_accumulators

REGION = "_wgmma_tile_region"


def applies(arch, threads, warp_specialize, ae, be, m, n, k) -> bool:
    groups = threads // 128
    return arch == "sm_90a" and not warp_specialize and threads % 128 == 0 and groups in (1, 2) \
        and str(ae) == str(be) and str(ae) in ("f16", "bf16") and m % (64 * groups) == 0 \
        and n % 8 == 0 and 8 <= n <= 256 and k % 64 == 0 and (m // groups) * n <= 16384


def _t(s):
    return ir.Type.parse(s)


def _region(kern, nbytes):
    """(byte offset) of the kernel's wgmma operand region, grown to nbytes (1024-aligned: the swizzle)."""
    have = getattr(kern, REGION, None)
    if have is None or have[1] < nbytes:
        have = (kern.reserve(nbytes, 1024), nbytes)
        setattr(kern, REGION, have)
    return have[0]


def _swizzled_store(kern, buf, frag, rows, cols, box_rows, boxes_per_row_block):
    """Store a rows×cols 16-bit fragment into boxes of box_rows×64 elements, 128-byte swizzled: element
    (r, c) goes to box (r // box_rows) · boxes_per_row_block + c // 64, row r % box_rows, chunk
    ((c % 64) / 8) ^ (r % 8)."""
    lay = kern.layout
    k = lay.frag_len([rows, cols])
    lanes = lay.lanes(k)

    def s(x):
        return F.splat(F.cidx(x), k)
    r = arith.DivUIOp(lanes, s(cols)).result
    c = arith.RemUIOp(lanes, s(cols)).result
    box = arith.AddIOp(arith.MulIOp(arith.DivUIOp(r, s(box_rows)).result, s(boxes_per_row_block)).result,
                       arith.DivUIOp(c, s(64)).result).result
    within = arith.RemUIOp(c, s(64)).result
    chunk = arith.XOrIOp(arith.DivUIOp(within, s(8)).result, arith.RemUIOp(r, s(8)).result).result
    off = arith.AddIOp(arith.MulIOp(box, s(box_rows * 64)).result,
                       arith.AddIOp(arith.MulIOp(arith.RemUIOp(r, s(box_rows)).result, s(64)).result,
                                    arith.AddIOp(arith.MulIOp(chunk, s(8)).result,
                                                 arith.RemUIOp(c, s(8)).result).result).result).result
    v = lay.vector_width(k)
    runs.store_runs(buf, off, lay.valid([rows, cols]), frag, k, v if v <= 8 and cols % v == 0 else 1)


def lower(kern, a, b, acc, m, n, k, elem):
    """C = A @ B (+ acc) for blocked fragments a (m×k), b (k×n); the f32 m×n blocked fragment."""
    groups = kern.T // 128
    rows = m // groups
    parts = rows // 64
    nb = -(-n // 64)
    kc = k // 64
    space = "#gpu.address_space<workgroup>"
    a_bytes, b_bytes = m * k * 2, kc * nb * 8192
    pitch = n + PAD
    base = _region(kern, max(a_bytes + b_bytes, m * pitch * 4))
    et = str(elem)

    def view(t, byte_off):
        return memref.ViewOp(_t(t), kern.smem, byte_off, []).result

    gpu.BarrierOp()   # the region's previous readers are done
    _swizzled_store(kern, view(f"memref<{m * k}x{et}, {space}>", F.cidx(base)), a, m, k, m, kc)
    _swizzled_store(kern, view(f"memref<{kc * nb * 4096}x{et}, {space}>", F.cidx(base + a_bytes)), b, k, n, 64, nb)
    nvvm.FenceProxyOp(nvvm.ProxyKind.async_shared, space=nvvm.SharedSpace.shared_cta)
    gpu.BarrierOp()

    # the descriptors' swizzle comes from a tensor map type; no TMA runs, so its value is a null pointer
    null = llvm.ZeroOp(_t("!llvm.ptr")).result
    tm_a = builtin.UnrealizedConversionCastOp([_t(
        f"!nvgpu.tensormap.descriptor<tensor = memref<64x64x{et}, 3>, swizzle = swizzle_128b, l2promo = none, "
        "oob = zero, interleave = none>")], [null]).results[0]
    tm_b = builtin.UnrealizedConversionCastOp([_t(
        f"!nvgpu.tensormap.descriptor<tensor = memref<64x64x{et}, 3>, swizzle = swizzle_128b, l2promo = none, "
        "oob = zero, interleave = none>")], [null]).results[0]
    acc_t = _t(f"!nvgpu.warpgroup.accumulator<fragmented = vector<64x{n}xf32>>")
    dA_t = _t(f"!nvgpu.warpgroup.descriptor<tensor = memref<64x64x{et}, 3>>")
    dB_t = _t(f"!nvgpu.warpgroup.descriptor<tensor = memref<64x{n}x{et}, 3>>")
    group = arith.DivUIOp(kern.tid, F.cidx(128)).result if groups > 1 else None
    first_row = arith.MulIOp(group, F.cidx(rows)).result if group is not None else F.cidx(0)
    accs = []
    for p in range(parts):
        cur = nvgpu.WarpgroupMmaInitAccumulatorOp(acc_t).result
        for q in range(kc):
            a_at = arith.AddIOp(F.cidx(base + q * m * 128 + p * 64 * 128),
                                arith.MulIOp(first_row, F.cidx(128)).result).result
            gA = nvgpu.WarpgroupGenerateDescriptorOp(dA_t, view(f"memref<64x64x{et}, {space}>", a_at), tm_a).result
            gB = nvgpu.WarpgroupGenerateDescriptorOp(
                dB_t, view(f"memref<64x{n}x{et}, {space}>", F.cidx(base + a_bytes + q * nb * 8192)), tm_b).result
            # (nvgpu waits after every commit; with no earlier group to retire, this wait waits for nothing)
            cur = nvgpu.WarpgroupMmaOp(acc_t, gA, gB, cur, transposeB=True, waitGroup=parts * kc).result
        accs.append(cur)
    nvvm.WgmmaWaitGroupSyncOp(0)
    gpu.BarrierOp()   # every warpgroup is done reading the operands the accumulators now overwrite
    store_accumulators(kern, accs, base, group, rows, pitch, n)
    gpu.BarrierOp()
    lay = kern.layout
    kk = lay.frag_len([m, n])
    f32 = ir.F32Type.get()
    out = lay.from_shared(view(f"memref<{m * pitch}xf32, {space}>", F.cidx(base)), [m, n],
                          F.vsplat_const(0.0, f32, kk), kk, f32, (n, pitch))
    gpu.BarrierOp()
    if acc is not None:
        out = arith.AddFOp(out, acc).result
    return out

