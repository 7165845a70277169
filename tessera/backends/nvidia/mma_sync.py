"""Tensor-core `tile.mma` on tiles already in registers (outside a pipelined K loop), sm_80 and sm_90a.

When N is a multiple of 16 the operands are stored to shared memory with rows padded by 16 bytes
(an ldmatrix phase's 8 rows then fall in 8 distinct bank groups, at the cost of one shift and one
add per element rather than the XOR swizzle's arithmetic), the output is split into warp tiles
(`mma_pipeline.warp_grid`, using as many warps as fit), each warp runs its ldmatrix.x4 /
ldmatrix.x4.trans / mma.sync steps over the whole K with the accumulators in registers, and the result
reaches the blocked layout through one padded shared-memory exchange (`mma_pipeline.to_blocked`).
Otherwise (N an odd multiple of 8) warps take the (M/16)·(N/8) output tiles round-robin from
unswizzled operands (ldmatrix x4 for A, x2 transposed for B). f16 uses `nvgpu.mma.sync` there; bf16
uses `nvvm.mma.sync` with operands packed as i32 (the probe's pitfall 6: nvgpu rejects bf16).
"""
from __future__ import annotations

import contextlib

from mlir import ir
from mlir.dialects import arith, gpu, memref, nvgpu, nvvm, scf, vector

from ...ir import builders as tb
from . import fragments as F, mma_pipeline as P
from .common import align, elem_bytes


def applies(ae, be, m, n, k) -> bool:
    return str(ae) == str(be) and str(ae) in ("f16", "bf16") and m % 16 == 0 and n % 8 == 0 and k % 16 == 0


def _view2d(kern, byte_off, rows, cols, elem):
    space = ir.Attribute.parse("#gpu.address_space<workgroup>")
    t = ir.MemRefType.get([rows, cols], elem, memory_space=space)
    v = memref.ViewOp(t, kern.smem, F.cidx(0), []).result
    v.owner.attributes["tessera.scratch_offset"] = ir.IntegerAttr.get(ir.IntegerType.get_signless(64), byte_off)
    kern.scratch_views.append(v.owner)
    return v


def _bf16_mma(fa, fb, acc):
    """One m16n8k16 bf16 mma.sync on ldmatrix fragments (the pipeline's operand packing and op)."""
    bf16 = ir.BF16Type.get()
    c = [vector.ExtractOp(acc, [], [r, q]).result for r in range(2) for q in range(2)]
    d = P._mma(P._pack(fa, range(4), bf16), P._pack(fb, range(2), bf16), c, bf16)
    return vector.FromElementsOp(ir.VectorType.get([2, 2], ir.F32Type.get()), d).result


def warp_tiled(kern, m, n):
    """The warp grid of the warp-tiled path for an m×n output, or None (round-robin path)."""
    return P.warp_grid(m, n, kern.T // 32, use_all=False) if n % 16 == 0 else None


def lower(kern, a, b, acc, m, n, k, elem, loads=(None, None), keep_mma=False):
    """C = A @ B (+ acc) for fragments a (m×k), b (k×n); returns the f32 m×n fragment. `loads`: for an
    operand still unlowered (a tile.load the warp-tiled path copies from global memory itself), its op.
    keep_mma (tessera-place-layout-conversions kept the result in the mma layout; warp-tiled, no acc): the
    accumulators packed in one vector instead."""
    grid = warp_tiled(kern, m, n)
    if grid is not None:
        return _lower_warp_tiled(kern, a, b, acc, m, n, k, elem, grid, loads, keep_mma)
    f32 = ir.F32Type.get()
    esz = elem_bytes(elem)
    off_b = align(m * k * esz)
    off_c = align(off_b + k * n * esz)
    kern.scratch_need = max(kern.scratch_need, off_c + m * n * 4)
    sa_flat = _view1d(kern, 0, m * k, elem)
    sb_flat = _view1d(kern, off_b, k * n, elem)
    sc_flat = _view1d(kern, off_c, m * n, f32)
    sa, sb, sc = _view2d(kern, 0, m, k, elem), _view2d(kern, off_b, k, n, elem), _view2d(kern, off_c, m, n, f32)
    T, lay = kern.T, kern.layout
    gpu.BarrierOp()
    ka, kb = lay.frag_len([m, k]), lay.frag_len([k, n])
    lay.to_shared(sa_flat, [m, k], a, ka)
    lay.to_shared(sb_flat, [k, n], b, kb)
    gpu.BarrierOp()

    c32 = F.cidx(32)
    lane = arith.RemUIOp(kern.tid, c32).result
    warp = arith.DivUIOp(kern.tid, c32).result
    c16, c8, c4, c2 = F.cidx(16), F.cidx(8), F.cidx(4), F.cidx(2)
    lr = arith.RemUIOp(lane, c16).result                      # ldmatrix row provider
    lc = arith.MulIOp(arith.DivUIOp(lane, c16).result, c8).result  # 0 or 8: A's k half
    er = arith.DivUIOp(lane, c4).result                       # accumulator row (and +8)
    ec = arith.MulIOp(arith.RemUIOp(lane, c4).result, c2).result   # accumulator column pair
    n_tiles_n = n // 8
    tiles = scf.ForOp(warp, F.cidx((m // 16) * n_tiles_n), F.cidx(T // 32))
    with ir.InsertionPoint(tiles.body):
        t = tiles.induction_variable
        mt = arith.MulIOp(arith.DivUIOp(t, F.cidx(n_tiles_n)).result, c16).result
        nt = arith.MulIOp(arith.RemUIOp(t, F.cidx(n_tiles_n)).result, c8).result
        zero = F.vsplat_const(0.0, f32, 1)
        acc0 = vector.BroadcastOp(ir.VectorType.get([2, 2], f32), arith.ConstantOp(f32, 0.0).result).result
        del zero
        kl = scf.ForOp(F.cidx(0), F.cidx(k), c16, [acc0])
        with ir.InsertionPoint(kl.body):
            k0 = kl.induction_variable
            fa = nvgpu.LdMatrixOp(ir.VectorType.get([4, 2], elem), sa,
                                  [arith.AddIOp(mt, lr).result, arith.AddIOp(k0, lc).result], False, 4).result
            fb = nvgpu.LdMatrixOp(ir.VectorType.get([2, 2], elem), sb,
                                  [arith.AddIOp(k0, lr).result, nt], True, 2).result
            cur = kl.inner_iter_args[0]
            if str(elem) == "f16":
                d = nvgpu.MmaSyncOp(ir.VectorType.get([2, 2], f32), fa, fb, cur,
                                    ir.ArrayAttr.get([ir.IntegerAttr.get(ir.IntegerType.get_signless(64), x) for x in (16, 8, 16)])).result
            else:
                d = _bf16_mma(fa, fb, cur)
            scf.YieldOp([d])
        res = kl.results[0]
        for h in range(2):
            row = arith.AddIOp(arith.AddIOp(mt, er).result, F.cidx(8 * h)).result
            col = arith.AddIOp(nt, ec).result
            vector.StoreOp(vector.ExtractOp(res, [], [h]).result, sc, [row, col])
        scf.YieldOp([])
    gpu.BarrierOp()
    kc = lay.frag_len([m, n])
    out = lay.from_shared(sc_flat, [m, n], F.vsplat_const(0.0, f32, kc), kc, f32)
    gpu.BarrierOp()
    if acc is not None:
        out = arith.AddFOp(out, acc).result
    return out


def _view1d(kern, byte_off, n, elem):
    space = ir.Attribute.parse("#gpu.address_space<workgroup>")
    v = memref.ViewOp(ir.MemRefType.get([n], elem, memory_space=space), kern.smem, F.cidx(0), []).result
    v.owner.attributes["tessera.scratch_offset"] = ir.IntegerAttr.get(ir.IntegerType.get_signless(64), byte_off)
    kern.scratch_views.append(v.owner)
    return v


def _lower_warp_tiled(kern, a, b, acc, m, n, k, elem, grid, loads, keep_mma=False):
    """Operands from registers go to rows padded by 16 bytes; operands still in global memory (`loads`)
    are copied there by cp.async into the swizzled layout (16-byte chunks, no registers)."""
    specs = []
    off = 0
    for value, (rows, cols), ld in ((a, (m, k), loads[0]), (b, (k, n), loads[1])):
        if ld is not None and not tb.is_window(ld.operands[0].type):   # a shared buffer, read in place
            specs.append((value, rows, cols, None, kern.shared_pitch(ld.operands[0])[1], ld.operands[0]))
            continue
        pitch = None if ld is not None else cols + 8
        nelem = rows * (pitch or cols)
        specs.append((value, rows, cols, ld, pitch, _view1d(kern, off, nelem, elem)))
        off = align(off + nelem * 2)
    kern.scratch_need = max(kern.scratch_need, off)
    gpu.BarrierOp()
    copied = False
    for value, rows, cols, ld, pitch, view in specs:
        if ld is not None:
            P.GlobalTile(ld, kern).issue(kern, F.cidx(0), lambda v: v, dst=view)
            copied = True
        elif not isinstance(value.type, ir.RankedTensorType):
            kern.layout.to_shared(view, [rows, cols], value, kern.layout.frag_len([rows, cols]), (cols, pitch))
    if copied:
        nvvm.CpAsyncCommitGroupOp()
        nvvm.CpAsyncWaitGroupOp(0)
    gpu.BarrierOp()
    (_, _, _, _, pa, sa), (_, _, _, _, pb, sb) = specs
    wm, wn = grid
    WM, WN = m // wm, n // wn
    f32 = ir.F32Type.get()
    zero = arith.ConstantOp(f32, 0.0).result
    accs = [zero] * ((WM // 16) * (WN // 8) * 4)
    used = wm * wn * 32
    busy = None
    if used < kern.T:   # the warps beyond the grid have no tile
        busy = scf.IfOp(arith.CmpIOp(arith.CmpIPredicate.ult, kern.tid, F.cidx(used)).result, [f32] * len(accs),
                        has_else=True)
        with ir.InsertionPoint(busy.else_block):
            scf.YieldOp(accs)
        ip = ir.InsertionPoint(busy.then_block)
    with ip if busy is not None else contextlib.nullcontext():
        accs = P.compute(kern, P.Operand(F.cidx(0), k, buf=sa, pitch=pa), P.Operand(F.cidx(0), n, buf=sb, pitch=pb),
                         elem, wn, WM, WN,
                         k, accs)
        if busy is not None:
            scf.YieldOp(accs)
    if busy is not None:
        accs = list(busy.results)
    if keep_mma:
        return vector.FromElementsOp(ir.VectorType.get([len(accs)], f32), accs).result
    out = P.to_blocked(kern, accs, wn, WM, WN, m, n, used)
    if acc is not None:
        out = arith.AddFOp(out, acc).result
    return out
