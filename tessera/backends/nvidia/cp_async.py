"""`tile.cp_async` as real `cp.async` on sm_80/sm_90a.

The shared buffer is cut into 16-byte chunks along its last dim (which must hold a whole number of
chunks); thread t issues chunks t, t+T, ... (a warp covers 512 contiguous bytes). For each chunk, if the global source is unit-stride in
its last dim and the chunk's address is 16-byte aligned, one `cp.async.cg` (bypass_l1) / `.ca`
copies it, with the source size clamped to the in-bounds elements so the hardware zero-fills the
rest; otherwise that chunk is copied element by element (synchronously) with the same bounds.
Commit and wait map to `cp.async.commit_group` / `cp.async.wait_group N`.
"""
from __future__ import annotations

import contextlib

from mlir import ir
from mlir.dialects import arith, memref, nvgpu, scf

from . import fragments as F


def chunk_elems(elem_bytes: int) -> int:
    return 16 // elem_bytes


def applies(shape, elem_bytes) -> bool:
    return bool(shape) and elem_bytes in (1, 2, 4, 8) and shape[-1] % chunk_elems(elem_bytes) == 0


def lower(kern, dst, src_window_op, shape, et, esz, bypass_l1, row_pitch=None):
    """row_pitch = (cols, pitch): a 2-D buffer whose rows are `pitch` elements apart."""
    c = chunk_elems(esz)
    cshape = list(shape[:-1]) + [shape[-1] // c]
    nchunks = F.numel(cshape)
    base = src_window_op.operands[0]
    offsets = list(src_window_op.operands)[1:]
    squeeze = [bool(x) for x in ir.DenseI64ArrayAttr(src_window_op.attributes["squeeze"])]
    flat, off0, sizes, strides = F.flat_global(base)
    ptr = memref.ExtractAlignedPointerAsIndexOp(base).result
    unit = arith.CmpIOp(arith.CmpIPredicate.eq, strides[-1], F.cidx(1)).result
    free = [d for d, q in enumerate(squeeze) if not q]
    T = kern.T
    for j in range((nchunks + T - 1) // T):
        q = arith.AddIOp(kern.tid, F.cidx(j * T)).result if j else kern.tid
        ifop = None
        if (j + 1) * T > nchunks:
            ifop = scf.IfOp(arith.CmpIOp(arith.CmpIPredicate.ult, q, F.cidx(nchunks)).result, [], has_else=False)
        with ir.InsertionPoint(ifop.then_block) if ifop is not None else contextlib.nullcontext():
            coords, rest = [], q
            for d in reversed(range(len(cshape))):
                coords.insert(0, arith.RemUIOp(rest, F.cidx(cshape[d])).result if d else rest)
                if d:
                    rest = arith.DivUIOp(rest, F.cidx(cshape[d])).result
            coords[-1] = arith.MulIOp(coords[-1], F.cidx(c)).result       # element column of the chunk
            lin, count = chunk_source(off0, offsets, dict(zip(free, coords)), sizes, strides, c)
            dst_e = arith.MulIOp(q, F.cidx(c)).result
            if row_pitch is not None:
                per_row = row_pitch[0] // c
                dst_e = arith.AddIOp(arith.MulIOp(arith.DivUIOp(q, F.cidx(per_row)).result, F.cidx(row_pitch[1])).result,
                                     arith.MulIOp(arith.RemUIOp(q, F.cidx(per_row)).result, F.cidx(c)).result).result
            addr = arith.AddIOp(ptr, arith.MulIOp(lin, F.cidx(esz)).result).result
            aligned = arith.CmpIOp(arith.CmpIPredicate.eq, arith.RemUIOp(addr, F.cidx(16)).result, F.cidx(0)).result
            fast = arith.AndIOp(unit, aligned).result
            br = scf.IfOp(fast, [], has_else=True)
            with ir.InsertionPoint(br.then_block):
                nvgpu.DeviceAsyncCopyOp(dst, [dst_e], flat, [lin],
                                        ir.IntegerAttr.get(ir.IndexType.get(), c), srcElements=count,
                                        bypassL1=True if bypass_l1 and esz * c == 16 else None)
                scf.YieldOp([])
            with ir.InsertionPoint(br.else_block):
                slow_chunk(dst, dst_e, flat, lin, strides[-1], count, c, et)
                scf.YieldOp([])
            if ifop is not None:
                scf.YieldOp([])


def chunk_source(off0, offsets, coords, sizes, strides, c):
    """(element offset, in-bounds element count) of the 16-byte chunk of a window whose tile coordinates
    are `coords` (dim -> index; the last dim's is the chunk's first column): the count is
    clamp(size - column, 0, c), 0 when an outer index is out of bounds."""
    lin, inb, last = off0, None, None
    for d, o in enumerate(offsets):
        g = arith.AddIOp(o, coords[d]).result if d in coords else o
        if d == len(offsets) - 1:
            last = g
        else:
            ok = arith.CmpIOp(arith.CmpIPredicate.ult, g, sizes[d]).result
            inb = ok if inb is None else arith.AndIOp(inb, ok).result
        lin = arith.AddIOp(lin, arith.MulIOp(g, strides[d]).result).result
    left = arith.SubIOp(sizes[-1], arith.MinUIOp(last, sizes[-1]).result).result
    count = arith.MinUIOp(left, F.cidx(c)).result
    if inb is not None:
        count = arith.SelectOp(inb, count, F.cidx(0)).result
    return lin, count


def slow_chunk(dst, dst_e, flat, lin, stride, count, c, et):
    zero = arith.ConstantOp(et, ir.IntegerAttr.get(et, 0) if isinstance(et, ir.IntegerType) else ir.FloatAttr.get(et, 0.0)).result
    for i in range(c):
        ci = F.cidx(i)
        ok = arith.CmpIOp(arith.CmpIPredicate.ult, ci, count).result
        ifop = scf.IfOp(ok, [et], has_else=True)
        with ir.InsertionPoint(ifop.then_block):
            at = arith.AddIOp(lin, arith.MulIOp(ci, stride).result).result
            scf.YieldOp([memref.LoadOp(flat, [at]).result])
        with ir.InsertionPoint(ifop.else_block):
            scf.YieldOp([zero])
        memref.StoreOp(ifop.results[0], dst, [arith.AddIOp(dst_e, ci).result])
