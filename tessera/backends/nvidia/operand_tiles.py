"""Operand tiles of the sm_80 tensor-core pipeline in global memory, and their swizzled shared slots.

- **Shared slots, swizzled.** A tile is stored row-major in 16-byte chunks; chunk c of row r goes to chunk
  c ^ ((r / per_phase) % max_phase) of its row (Triton's swizzled shared layout): the 8 rows one ldmatrix
  phase reads fall in 8 distinct 16-byte bank groups.
- **Copies.** `GlobalTile.issue` copies a tile into a slot with 16-byte `cp.async.cg`, chunk q by thread
  q % T. `GlobalTile.prepare` computes, once before a K loop, what a thread's chunks keep across it (see
  there); on the aligned stride class the copies are one predicated path (source size 16 bytes or 0).
"""
from __future__ import annotations

import contextlib

from mlir import ir
from mlir.dialects import arith, memref, nvgpu, scf

from ...ir import builders as tb
from . import fragments as F
from .common import arg_number
from .cp_async import chunk_source, slow_chunk
from .wgmma import _clone_slice

CHUNK = 16   # bytes per cp.async and per ldmatrix row


def swizzle_params(row_chunks):
    """(per_phase, max_phase) of the XOR swizzle for rows of `row_chunks` 16-byte chunks; (1, 1) (no
    swizzle) when the row is not a power-of-two number of chunks below 8 or a multiple of 8."""
    if row_chunks >= 8 and row_chunks % 8 == 0:
        return 1, 8
    if row_chunks in (1, 2, 4):
        return 8 // row_chunks, row_chunks
    return 1, 1


def swizzled_chunk(row, chunk, row_chunks):
    """The stored chunk column of (row, chunk) (index values)."""
    per_phase, max_phase = swizzle_params(row_chunks)
    if max_phase == 1:
        return chunk
    phase = arith.RemUIOp(arith.DivUIOp(row, F.cidx(per_phase)).result if per_phase > 1 else row,
                          F.cidx(max_phase)).result
    return arith.XOrIOp(chunk, phase).result


class GlobalTile:
    """An operand tile in global memory (a 2-D window, 16-bit elements): its window, shape and where it
    goes in a pipeline slot."""

    def __init__(self, load, kern, offset_in_slot=0):
        self.load = load
        self.view = load.operands[0].owner
        shape, self.et = tb.window_shape_elem(load.operands[0].type)
        self.rows, self.cols = list(shape)
        self.esz = 2
        self.per_chunk = CHUNK // self.esz
        self.row_chunks = self.cols // self.per_chunk
        self.nbytes = self.rows * self.cols * self.esz
        self.offset_in_slot = offset_in_slot
        self.aligned = arg_number(self.view.operands[0]) in kern.aligned_args
        self.whole = arg_number(self.view.operands[0]) in kern.whole_chunk_args   # rows of whole chunks

    def prepare(self, kern, body=None, clamp=False):
        """What a thread's chunks keep across a K loop whose body is `body`, computed at the insertion point
        (before the loop): per chunk, its place in a slot, its element offset from the window's corner and
        its source size as far as the dims whose window offset does not change in the loop decide.
        clamp: along those dims (M of A, N of B), rows and columns past the tensor's end read its last one
        instead of zeros: only rows and columns of the product that are never stored depend on them (the
        loop's result goes straight to a bounds-checked store), and the loop then tests the K dim alone."""
        base = self.view.operands[0]
        self.flat, off0, self.sizes, strides = F.flat_global(base)
        self.ptr = memref.ExtractAlignedPointerAsIndexOp(base).result
        if self.aligned:   # offset 0 and unit inner stride (the launchers' ABI for this class)
            off0, strides = F.cidx(0), list(strides[:-1]) + [F.cidx(1)]
        self.off0, self.strides = off0, strides
        squeeze = [bool(x) for x in ir.DenseI64ArrayAttr(self.view.attributes["squeeze"])]
        self.free = [d for d, q in enumerate(squeeze) if not q]
        iv = body.arguments[0] if body is not None else None
        self.varies = [iv is not None and _depends_on(o, iv, body) for o in list(self.view.operands)[1:]]
        memo = []   # the invariant offsets, computed here (the body may compute them)
        offsets = [o if v or body is None else _clone_slice(o, iv, iv, body, memo)
                   for o, v in zip(list(self.view.operands)[1:], self.varies)]
        c, T = self.per_chunk, kern.T
        nchunks = self.rows * self.row_chunks
        # a thread's chunks j > 0 sit R rows below its first (same column, same swizzle phase) when the
        # CTA covers whole rows: offsets in the slot and in the tensor then differ by constants
        per_phase, max_phase = swizzle_params(self.row_chunks)
        R = T // self.row_chunks if T % self.row_chunks == 0 else None
        steady = R is not None and R % (per_phase * max_phase) == 0
        rdim = self.free[0]
        self.chunks = []     # (guard or None, element offset in the slot, coords by dim, offset, count or None)
        for j in range((nchunks + T - 1) // T):
            q = arith.AddIOp(kern.tid, F.cidx(j * T)).result if j else kern.tid
            guard = arith.CmpIOp(arith.CmpIPredicate.ult, q, F.cidx(nchunks)).result if (j + 1) * T > nchunks else None
            if steady and j:
                _, in_slot0, coords0, inner0, _ = self.chunks[0]
                in_slot = arith.AddIOp(in_slot0, F.cidx(j * R * self.cols)).result
                coords = dict(coords0)
                coords[rdim] = arith.AddIOp(coords0[rdim], F.cidx(j * R)).result
                inner = arith.AddIOp(inner0, arith.MulIOp(F.cidx(j * R), strides[rdim]).result).result
            else:
                row = arith.DivUIOp(q, F.cidx(self.row_chunks)).result
                chunk = arith.RemUIOp(q, F.cidx(self.row_chunks)).result
                stored = swizzled_chunk(row, chunk, self.row_chunks)
                in_slot = arith.AddIOp(arith.MulIOp(row, F.cidx(self.cols)).result,
                                       arith.MulIOp(stored, F.cidx(c)).result).result
                coords = dict(zip(self.free, [row, arith.MulIOp(chunk, F.cidx(c)).result]))
                inner = None
                for d in self.free:
                    term = arith.MulIOp(coords[d], strides[d]).result
                    inner = term if inner is None else arith.AddIOp(inner, term).result
            # the source size as far as the loop-invariant dims decide, as arithmetic (umin) rather than a
            # comparison: a register per chunk across the loop (LLVM sinks comparisons into the loop)
            inside = None
            for d, o in enumerate(offsets):
                if self.varies[d]:
                    continue
                if clamp and d in coords:
                    size = self.sizes[d]
                    last = arith.SubIOp(arith.MaxUIOp(size, F.cidx(1)).result, F.cidx(1)).result
                    if d == len(offsets) - 1:    # the last chunk that starts inside (chunks stay aligned)
                        last = arith.MulIOp(arith.DivUIOp(last, F.cidx(c)).result, F.cidx(c)).result
                    g = arith.MinUIOp(arith.AddIOp(o, coords[d]).result, last).result
                    inner = arith.AddIOp(inner, arith.MulIOp(arith.SubIOp(g, arith.AddIOp(o, coords[d]).result).result,
                                                             strides[d]).result).result
                    one = arith.MinUIOp(size, F.cidx(1)).result       # an empty tensor reads nothing
                else:
                    g = arith.AddIOp(o, coords[d]).result if d in coords else o
                    left = arith.SubIOp(self.sizes[d], arith.MinUIOp(g, self.sizes[d]).result).result
                    one = arith.MinUIOp(left, F.cidx(1)).result       # 1 inside the tensor, else 0
                inside = one if inside is None else arith.MinUIOp(inside, one).result
            self.chunks.append((guard, in_slot, coords, inner, inside))
        self.corner = off0
        for d, o in enumerate(offsets):
            if not self.varies[d]:
                self.corner = arith.AddIOp(self.corner, arith.MulIOp(o, strides[d]).result).result

    def issue(self, kern, slot_elems, clone, dst=None):
        """cp.async of this tile of the iteration whose offsets `clone` gives into the slot that starts
        `slot_elems` elements into `dst` (by default the shared block's `et` view), chunks swizzled."""
        offsets = [clone(o) for o in list(self.view.operands)[1:]]
        dst = dst if dst is not None else kern.smem_elems(self.et)
        c = self.per_chunk
        if not hasattr(self, "chunks"):
            self.prepare(kern)
        if self.aligned and F.known_divisor(offsets[-1]) % c == 0:
            # the aligned stride class (16-byte aligned data, row strides 16-byte multiples) and a column
            # offset of whole chunks: every chunk is aligned. One predicated path, as Triton's: the source
            # size is 0 for a chunk outside the tensor (clamped for one across its end): hardware zero fill.
            corner = self.corner
            for d, o in enumerate(offsets):
                if self.varies[d]:
                    corner = arith.AddIOp(corner, arith.MulIOp(o, self.strides[d]).result).result
            last = len(offsets) - 1
            for guard, in_slot, coords, inner, inside in self.chunks:
                ifop = scf.IfOp(guard, [], has_else=False) if guard is not None else None
                with ir.InsertionPoint(ifop.then_block) if ifop is not None else contextlib.nullcontext():
                    ok, col = None, None
                    if inside is not None:   # the source size is a constant or 0 (ptxas then needs no address fix-up)
                        ok = arith.CmpIOp(arith.CmpIPredicate.ne, inside, F.cidx(0)).result
                    for d, o in enumerate(offsets):
                        g = arith.AddIOp(o, coords[d]).result if d in coords else o
                        if d == last:
                            col = g
                        if self.varies[d] and (d != last or self.whole):
                            t = arith.CmpIOp(arith.CmpIPredicate.ult, g, self.sizes[d]).result
                            ok = t if ok is None else arith.AndIOp(ok, t).result
                    count = None
                    if not self.whole:   # a chunk across the end of a row: its elements up to the end
                        left = arith.SubIOp(self.sizes[last], arith.MinUIOp(col, self.sizes[last]).result).result
                        count = arith.MinUIOp(left, F.cidx(c)).result
                    if ok is not None:
                        count = arith.SelectOp(ok, count if count is not None else F.cidx(c), F.cidx(0)).result
                    _cp_async(dst, arith.AddIOp(slot_elems, in_slot).result, self.flat,
                              arith.AddIOp(corner, inner).result, count, c)
                    if ifop is not None:
                        scf.YieldOp([])
            return
        flat, off0, sizes, strides, ptr, free = self.flat, self.off0, self.sizes, self.strides, self.ptr, self.free
        nchunks = self.rows * self.row_chunks
        if self.aligned:   # one uniform check: rows are 16-byte multiples apart, chunks 16 bytes wide
            corner = off0
            for o, s in zip(offsets, strides):
                corner = arith.AddIOp(corner, arith.MulIOp(o, s).result).result
            addr = arith.AddIOp(ptr, arith.MulIOp(corner, F.cidx(self.esz)).result).result
            fast_all = arith.CmpIOp(arith.CmpIPredicate.eq, arith.RemUIOp(addr, F.cidx(CHUNK)).result,
                                    F.cidx(0)).result
            br = scf.IfOp(fast_all, [], has_else=True)
            for block, fast in ((br.then_block, True), (br.else_block, False)):
                with ir.InsertionPoint(block):
                    self._chunks(kern, flat, off0, sizes, strides, offsets, free, dst, slot_elems, nchunks, c,
                                 ptr, fast)
                    scf.YieldOp([])
        else:
            self._chunks(kern, flat, off0, sizes, strides, offsets, free, dst, slot_elems, nchunks, c, ptr, None)

    def _chunks(self, kern, flat, off0, sizes, strides, offsets, free, dst, slot_elems, nchunks, c, ptr, fast):
        """fast: True (every chunk by cp.async), False (every chunk element by element), None (decided
        per chunk at run time: unit inner stride and a 16-byte aligned source)."""
        T = kern.T
        for j in range((nchunks + T - 1) // T):
            q = arith.AddIOp(kern.tid, F.cidx(j * T)).result if j else kern.tid
            guard = None
            if (j + 1) * T > nchunks:
                guard = scf.IfOp(arith.CmpIOp(arith.CmpIPredicate.ult, q, F.cidx(nchunks)).result, [],
                                 has_else=False)
            with ir.InsertionPoint(guard.then_block) if guard is not None else contextlib.nullcontext():
                row = arith.DivUIOp(q, F.cidx(self.row_chunks)).result
                chunk = arith.RemUIOp(q, F.cidx(self.row_chunks)).result
                stored = swizzled_chunk(row, chunk, self.row_chunks)
                dst_e = arith.AddIOp(slot_elems, arith.AddIOp(
                    arith.MulIOp(row, F.cidx(self.cols)).result, arith.MulIOp(stored, F.cidx(c)).result).result).result
                coords = dict(zip(free, [row, arith.MulIOp(chunk, F.cidx(c)).result]))
                lin, count = chunk_source(off0, offsets, coords, sizes, strides, c)
                if fast is None:
                    addr = arith.AddIOp(ptr, arith.MulIOp(lin, F.cidx(self.esz)).result).result
                    ok = arith.AndIOp(
                        arith.CmpIOp(arith.CmpIPredicate.eq, strides[-1], F.cidx(1)).result,
                        arith.CmpIOp(arith.CmpIPredicate.eq, arith.RemUIOp(addr, F.cidx(CHUNK)).result,
                                     F.cidx(0)).result).result
                    br = scf.IfOp(ok, [], has_else=True)
                    with ir.InsertionPoint(br.then_block):
                        _cp_async(dst, dst_e, flat, lin, count, c)
                        scf.YieldOp([])
                    with ir.InsertionPoint(br.else_block):
                        slow_chunk(dst, dst_e, flat, lin, strides[-1], count, c, self.et)
                        scf.YieldOp([])
                elif fast:
                    _cp_async(dst, dst_e, flat, lin, count, c)
                else:
                    slow_chunk(dst, dst_e, flat, lin, strides[-1], count, c, self.et)
                if guard is not None:
                    scf.YieldOp([])


def _depends_on(v, iv, block) -> bool:
    """`v` changes with the loop variable `iv` of the loop whose body is `block`."""
    if v == iv:
        return True
    owner = v.owner
    if isinstance(owner, ir.Block) or owner.operation.block != block:
        return False
    return any(_depends_on(o, iv, block) for o in owner.operation.operands)


def _cp_async(dst, dst_e, flat, lin, count, c):
    """One 16-byte cp.async.cg; `count` (None: all c) source elements, the rest zero-filled."""
    nvgpu.DeviceAsyncCopyOp(dst, [dst_e], flat, [lin], ir.IntegerAttr.get(ir.IndexType.get(), c),
                            srcElements=count, bypassL1=True)
