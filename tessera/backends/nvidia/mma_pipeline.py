"""sm_80 (and sm_90a outside wgmma): a `tessera.mma_pipeline` K loop → a `num_stages`-deep cp.async
pipeline feeding mma.sync, with the accumulators in registers across the loop.

Layouts (pictures in docs/nvidia.md):
- **Warp tiling.** The M×N tile is split over a wm × wn grid of warps (wm·wn = num_warps) into warp
  tiles WM×WN (multiples of 16), chosen to minimise WM + WN (the shared-memory bytes read per MMA).
- **Accumulator (mma.sync C/D) layout.** A warp tile is (WM/16)·(WN/8) m16n8 tiles; in each, lane l
  holds rows l/4 and l/4 + 8, columns 2·(l%4) and 2·(l%4) + 1: four f32 scalars per tile, carried
  as scf.for iter_args, so they stay in registers.
- **Shared slots, swizzled.** Stage s holds the A tile (M×K, K contiguous) and the B tile (K×N, N
  contiguous) row-major, cut into 16-byte chunks; chunk c of row r is stored at chunk
  c ^ ((r / per_phase) % max_phase) of its row, with per_phase = max(1, 128 B / row bytes) and
  max_phase = min(8, chunks per row) (Triton's swizzled shared layout). The 8 row addresses an
  ldmatrix phase reads (8 consecutive rows, one chunk column) then fall in 8 distinct 16-byte bank
  groups: conflict-free. cp.async writes whole chunks, so the swizzle costs it nothing.
- **Operands.** A fragments by `ldmatrix.x4` (one m16k16 tile each), B by `ldmatrix.x4.trans` (a k16n16
  tile: the B fragments of two n8 tiles).

Pipeline: chunk q of a tile is copied by thread q % T (a warp covers 512 contiguous bytes) with
`cp.async.cg` of 16 bytes (`operand_tiles.GlobalTile`). On the aligned stride class with a column offset
of whole chunks the copies are one predicated path (source size 16 bytes or 0: hardware zero fill), with
each chunk's slot place, offset and loop-invariant bounds computed before the loop; when the loop's result
goes straight to a bounds-checked store, rows of A and columns of B past the tensor read its last one, so
the loop tests K alone. A tensor that is not of the aligned stride class checks alignment per chunk and
copies unaligned chunks element by element. The read and refill
slots are carried as loop counters. The prologue fills stages 0..S-2; iteration i waits until its group landed
(`cp.async.wait_group S-2`), a barrier publishes it CTA-wide and frees the slot iteration i - 1 read,
then the loads of iteration i + S - 1 go into that slot and the MMAs of iteration i run from slot
i % S. num_stages = 1 loads, waits and computes in turn.

Epilogue: when the loop's result is only stored whole to a global window of f32, each thread stores
its pairs straight from registers (`st.global.v2.f32` when the window is in bounds and aligned, one
scalar store per element under its bounds otherwise: full 32-byte sectors either way); any other use
gets the tile in the blocked layout through shared memory.
"""
from __future__ import annotations

import contextlib

from mlir import ir
from mlir.dialects import arith, gpu, llvm, memref, nvgpu, nvvm, scf, vector

from ...passes import k_loops
from . import fragments as F, runs
from .common import arg_number, elem_bytes, next_slot
from .operand_tiles import CHUNK, GlobalTile, swizzled_chunk
from .wgmma import _clone_slice


def warp_grid(m, n, warps, use_all=True):
    """(wm, wn): the warp grid whose warp tiles (m/wm)×(n/wn) are multiples of 16 with the least
    m/wm + n/wn (ties: more warps along M), or None. With use_all=False the grid may use fewer warps
    (a divisor of `warps`; the most that fit)."""
    if not use_all:
        w = warps
        while w >= 1:
            if warps % w == 0 and warp_grid(m, n, w) is not None:
                return warp_grid(m, n, w)
            w -= 1
        return None
    best = None
    for wm in range(1, warps + 1):
        if warps % wm:
            continue
        wn = warps // wm
        if m % (16 * wm) or n % (16 * wn):
            continue
        cost = m // wm + n // wn
        if best is None or cost < best[0] or (cost == best[0] and wm > best[1][0]):
            best = (cost, (wm, wn))
    return best[1] if best else None


def _pack(frag, rows, et):
    """mma.sync operand registers from rows of an ldmatrix result (vector<R x 2 x et>): vector<2xf16>
    for f16, i32 for bf16 (nvvm wants bf16 pairs as i32)."""
    regs = []
    for r in rows:
        pair = vector.ExtractOp(frag, [], [r]).result
        if str(et) == "bf16":
            as_i32 = vector.BitCastOp(ir.VectorType.get([1], ir.IntegerType.get_signless(32)), pair).result
            pair = vector.ExtractOp(as_i32, [], [0]).result
        regs.append(pair)
    return regs


def _mma(a_regs, b_regs, c_regs, et):
    f32 = ir.F32Type.get()
    st = ir.Type.parse("!llvm.struct<(f32, f32, f32, f32)>")
    ptx = ir.Attribute.parse(f"#nvvm.mma_type<{et}>")
    res = nvvm.MmaOp(st, ir.Attribute.parse("#nvvm.shape<m = 16, n = 8, k = 16>"),
                     ir.Attribute.parse("#nvvm.mma_layout<row>"), ir.Attribute.parse("#nvvm.mma_layout<col>"),
                     a_regs, b_regs, c_regs, multiplicandAPtxType=ptx, multiplicandBPtxType=ptx).result
    return [llvm.ExtractValueOp(f32, res, [r]).result for r in range(4)]


def plan(kern, loop):
    """The warp grid for a marked loop, or None when none fits kern's warps (the loop then stays for
    the generic lowering)."""
    mma, a_ld, b_ld = k_loops.match(loop)
    (m, _), (_, n) = [list(ir.RankedTensorType(x.results[0].type).shape) for x in (a_ld, b_ld)]
    return warp_grid(m, n, kern.T // 32)


def rewrite(kern, loop, stages, grid):
    mma, a_ld, b_ld = k_loops.match(loop)
    init = k_loops.splat_init(loop)
    A = GlobalTile(a_ld, kern, 0)
    B = GlobalTile(b_ld, kern, A.nbytes)
    et = A.et
    M, K, N = A.rows, A.cols, B.cols
    wm, wn = grid
    WM, WN = M // wm, N // wn
    mt, nt = WM // 16, WN // 8
    slot_bytes = A.nbytes + B.nbytes
    base = kern.reserve(stages * slot_bytes, 128, loop.location)
    esz = A.esz
    f32 = ir.F32Type.get()
    old_body = loop.regions[0].blocks[0]
    lb, ub, step = list(loop.operands)[:3]
    iv_old = old_body.arguments[0]

    def slot_elems(slot):
        return arith.AddIOp(F.cidx(base // esz), arith.MulIOp(slot, F.cidx(slot_bytes // esz)).result).result

    def issue(slot, iv_src, iv_new, block):
        memo = []
        start = slot_elems(slot)
        for t in (A, B):
            t.issue(kern, arith.AddIOp(start, F.cidx(t.offset_in_slot // esz)).result,
                    lambda v: _clone_slice(v, iv_src, iv_new, block, memo))

    def exists(j, iv_j):
        """Whether iteration j (loop variable iv_j) runs: iv_j < ub (signed, as scf.for compares)."""
        return arith.CmpIOp(arith.CmpIPredicate.slt, iv_j, ub).result

    n_acc = mt * nt * 4
    with ir.InsertionPoint(loop), loop.location:
        clamp = STORED in loop.attributes
        A.prepare(kern, old_body, clamp)
        B.prepare(kern, old_body, clamp)
        for s in range(stages - 1):
            iv_s = arith.AddIOp(lb, arith.MulIOp(F.cidx(s), step).result).result
            pre = scf.IfOp(exists(s, iv_s), [], has_else=False)
            with ir.InsertionPoint(pre.then_block):
                issue(F.cidx(s), iv_old, iv_s, old_body)
                scf.YieldOp([])
            nvvm.CpAsyncCommitGroupOp()
        zero = arith.ConstantOp(f32, init).result
        # the slots read and refilled this iteration, carried (i % S and (i + S - 1) % S without a division)
        new = scf.ForOp(lb, ub, step, [zero] * n_acc + [F.cidx(0), F.cidx(max(stages - 1, 0))])
    with ir.InsertionPoint(new.body), loop.location:
        y = scf.YieldOp(list(new.inner_iter_args))
    for op in list(old_body.operations):
        if op.operation.name != "scf.yield":
            op.operation.move_before(y)
    iv_old.replace_all_uses_with(new.induction_variable)
    with ir.InsertionPoint(y), loop.location:
        iv = new.induction_variable
        carried = list(new.inner_iter_args)
        slot, refill_slot = carried[n_acc], carried[n_acc + 1]
        if stages == 1:
            gpu.BarrierOp()              # the previous iteration's ldmatrix reads are done
            issue(F.cidx(0), iv, iv, new.body)
            nvvm.CpAsyncCommitGroupOp()
            nvvm.CpAsyncWaitGroupOp(0)
            gpu.BarrierOp()
        else:
            nvvm.CpAsyncWaitGroupOp(stages - 2)    # iteration i's group has landed (for this thread)
            gpu.BarrierOp()                        # ... for every thread; and slot (i - 1) % S is free
            iv_j = arith.AddIOp(iv, arith.MulIOp(F.cidx(stages - 1), step).result).result
            refill = scf.IfOp(exists(None, iv_j), [], has_else=False)
            with ir.InsertionPoint(refill.then_block):
                issue(refill_slot, iv, iv_j, new.body)
                scf.YieldOp([])
            nvvm.CpAsyncCommitGroupOp()            # possibly empty: keeps the group count per iteration
        start = slot_elems(slot)
        accs = compute(kern, Operand(start, A.cols), Operand(arith.AddIOp(start, F.cidx(B.offset_in_slot // esz)).result,
                                                              B.cols), et, wn, WM, WN, K, carried[:n_acc])
        accs += [next_slot(slot, stages)[0], next_slot(refill_slot, stages)[0]]
    for q, v in enumerate(accs):
        y.operands[q] = v
    _epilogue(kern, loop, list(new.results)[:n_acc], wm, wn, WM, WN)
    old_yield = old_body.operations[len(old_body.operations) - 1]
    old_yield.operands[0] = old_body.arguments[1]
    for dead in (mma, a_ld, b_ld, A.view, B.view):
        dead.erase()
    loop.erase()


def _lane_parts(kern):
    lane = arith.RemUIOp(kern.tid, F.cidx(32)).result
    warp = arith.DivUIOp(kern.tid, F.cidx(32)).result
    return lane, warp


class Operand:
    """Where an MMA operand tile lies in shared memory: `start` (elements into `buf`, by default the
    block's view of its type), row-major rows of `cols` elements with 16-byte chunks XOR-swizzled
    (`swizzled_chunk`), or, with `pitch`, unswizzled rows `pitch` elements apart (a pitch of cols + 8
    spreads an ldmatrix phase's 8 rows over the 8 bank groups too)."""

    def __init__(self, start, cols, esz=2, buf=None, pitch=None):
        self.start, self.cols, self.buf, self.pitch = start, cols, buf, pitch
        self.row_chunks = cols * esz // CHUNK


def compute(kern, a, b, et, wn, WM, WN, K, accs):
    """The MMAs of a K-deep step of this warp's WM×WN tile from the swizzled operands a (M×K) and
    b (K×N): `accs` (4 f32 per m16n8 tile, see `acc_coords`) in, updated accumulators out."""
    lane, warp = _lane_parts(kern)
    m0 = arith.MulIOp(arith.DivUIOp(warp, F.cidx(wn)).result, F.cidx(WM)).result
    n0 = arith.MulIOp(arith.RemUIOp(warp, F.cidx(wn)).result, F.cidx(WN)).result
    quad = arith.DivUIOp(lane, F.cidx(8)).result
    in_mat = arith.RemUIOp(lane, F.cidx(8)).result
    # lanes 8q..8q+7 give the rows of matrix q: rows +8 for q odd, chunks +1 for q >= 2
    row_part = arith.AddIOp(in_mat, arith.MulIOp(arith.RemUIOp(quad, F.cidx(2)).result, F.cidx(8)).result).result
    chunk_part = arith.DivUIOp(quad, F.cidx(2)).result
    dst = kern.smem_elems(et)
    vt = ir.VectorType.get([4, 2], et)
    mt, nt = WM // 16, WN // 8

    def ldm(opnd, row, chunk, trans):
        stored = swizzled_chunk(row, chunk, opnd.row_chunks) if opnd.pitch is None else chunk
        at = arith.AddIOp(opnd.start, arith.AddIOp(arith.MulIOp(row, F.cidx(opnd.pitch or opnd.cols)).result,
                                                   arith.MulIOp(stored, F.cidx(8)).result).result).result
        return nvgpu.LdMatrixOp(vt, opnd.buf if opnd.buf is not None else dst, [at], trans, 4).result

    accs = list(accs)
    for kk in range(K // 16):
        a_frags = []
        for mi in range(mt):
            row = arith.AddIOp(arith.AddIOp(m0, F.cidx(mi * 16)).result, row_part).result
            chunk = arith.AddIOp(F.cidx(kk * 2), chunk_part).result
            a_frags.append(_pack(ldm(a, row, chunk, False), range(4), et))
        b_frags = []
        for ni in range(WN // 16):
            row = arith.AddIOp(F.cidx(kk * 16), row_part).result
            chunk = arith.AddIOp(arith.DivUIOp(arith.AddIOp(n0, F.cidx(ni * 16)).result, F.cidx(8)).result,
                                 chunk_part).result
            frag = ldm(b, row, chunk, True)
            b_frags += [_pack(frag, (0, 1), et), _pack(frag, (2, 3), et)]
        for mi in range(mt):
            for nj in range(nt):
                q = (mi * nt + nj) * 4
                accs[q:q + 4] = _mma(a_frags[mi], b_frags[nj], accs[q:q + 4], et)
    return accs


def to_blocked(kern, accs, wn, WM, WN, M, N, used=None):
    """The M×N accumulators (mma layout) as a blocked f32 fragment, through shared memory with rows
    N + 8 words apart (a warp's v2 stores of 8 rows hit disjoint banks when N is a multiple of 32).
    When the blocked runs are 8 f32 (two 16-byte chunks), rows hold a multiple of 16 chunks and each thread's
    runs sit in one column, 16-byte chunk c of a row is stored at c ^ ((c / 8) % 2): the 8 threads of a
    quarter-warp, which read chunks 2t (then 2t + 1) of one row, then hit 8 distinct bank groups instead of
    4 (a 2-way conflict on every read otherwise); a thread's swizzled column is computed once.
    `used`: the threads that hold accumulators when fewer than all do."""
    f32 = ir.F32Type.get()
    pitch = N + 8
    lay = kern.layout
    k = lay.frag_len([M, N])
    v = lay.vector_width(k) if N % lay.vector_width(k) == 0 else 1
    swizzle = v == 8 and N % 64 == 0 and (kern.T * v) % N == 0 and M * N == k * kern.T

    def place(col):
        """The stored column of column `col` (a multiple of 4 in a 16-byte chunk, or of 2 in it)."""
        if not swizzle:
            return col
        flip = arith.AndIOp(arith.ShRUIOp(col, F.cidx(5)).result, F.cidx(1)).result    # (col / 4 / 8) % 2
        return arith.XOrIOp(col, arith.ShLIOp(flip, F.cidx(2)).result).result
    buf = kern.scratch(M * pitch, f32)
    gpu.BarrierOp()
    guard = None
    if used is not None and used < kern.T:
        guard = scf.IfOp(arith.CmpIOp(arith.CmpIPredicate.ult, kern.tid, F.cidx(used)).result, [], has_else=False)
    with ir.InsertionPoint(guard.then_block) if guard is not None else contextlib.nullcontext():
        for q, (r, c) in enumerate(acc_coords(kern, wn, WM, WN)):
            pair = vector.FromElementsOp(ir.VectorType.get([2], f32), accs[2 * q:2 * q + 2]).result
            vector.StoreOp(pair, buf, [arith.AddIOp(arith.MulIOp(r, F.cidx(pitch)).result, place(c)).result],
                           alignment=8)
        if guard is not None:
            scf.YieldOp([])
    gpu.BarrierOp()
    if swizzle:   # slot j of run r: row row0 + r·(T·8 / N), column col0 + j % 8, its chunk swizzled
        first = arith.MulIOp(kern.tid, F.cidx(8)).result
        row0, col0 = arith.DivUIOp(first, F.cidx(N)).result, arith.RemUIOp(first, F.cidx(N)).result
        base = arith.MulIOp(row0, F.cidx(pitch)).result
        halves = [arith.AddIOp(base, place(arith.AddIOp(col0, F.cidx(4 * h)).result)).result for h in range(2)]
        step = kern.T * 8 // N * pitch
        at = vector.FromElementsOp(ir.VectorType.get([k], ir.IndexType.get()),
                                   [arith.AddIOp(halves[(j % 8) // 4], F.cidx((j // 8) * step + j % 4)).result
                                    for j in range(k)]).result
        frag = runs.load_runs(buf, at, None, F.vsplat_const(0.0, f32, k), k, f32, 4)
    else:
        lanes = lay.lanes(k)
        padded = arith.AddIOp(lanes, arith.MulIOp(arith.DivUIOp(lanes, F.splat(F.cidx(N), k)).result,
                                                  F.splat(F.cidx(8), k)).result).result
        frag = runs.load_runs(buf, padded, lay.valid([M, N]), F.vsplat_const(0.0, f32, k), k, f32, v)
    gpu.BarrierOp()
    return frag


def acc_coords(kern, wn, WM, WN):
    """Per accumulator scalar q: (row, col) index values within the tile."""
    lane, warp = _lane_parts(kern)
    m0 = arith.MulIOp(arith.DivUIOp(warp, F.cidx(wn)).result, F.cidx(WM)).result
    n0 = arith.MulIOp(arith.RemUIOp(warp, F.cidx(wn)).result, F.cidx(WN)).result
    g = arith.AddIOp(m0, arith.DivUIOp(lane, F.cidx(4)).result).result
    cpair = arith.AddIOp(n0, arith.MulIOp(arith.RemUIOp(lane, F.cidx(4)).result, F.cidx(2)).result).result
    out = []
    for mi in range(WM // 16):
        for nj in range(WN // 8):
            for h in range(2):
                r = arith.AddIOp(g, F.cidx(mi * 16 + 8 * h)).result
                c = arith.AddIOp(cpair, F.cidx(nj * 8)).result
                out.append((r, c))
    return out


STORED = "tessera.stored_from_registers"   # set by tessera-place-layout-conversions: the result reaches only stores


def acc_count(shape, grid):
    """Accumulator scalars per thread of an M×N tile in the mma layout of warp grid (wm, wn)."""
    (M, N), (wm, wn) = shape, grid
    return (M // wm // 16) * (N // wn // 8) * 4


def _epilogue(kern, loop, results, wm, wn, WM, WN):
    """The loop's result: the accumulators packed in one vector (the mma layout) when
    tessera-place-layout-conversions kept it there, else the blocked fragment."""
    with ir.InsertionPoint.after(results[0].owner), loop.location:
        if "tessera.layout" in loop.attributes:
            value = vector.FromElementsOp(ir.VectorType.get([len(results)], ir.F32Type.get()), results).result
        else:
            value = to_blocked(kern, results, wn, WM, WN, WM * wm, WN * wn)
    loop.results[0].replace_all_uses_with(value)


def convert_to_blocked(kern, packed, shape, grid):
    """`tile.convert_layout`: an f32 tile in the mma layout (packed accumulators) → the blocked fragment."""
    (M, N), (wm, wn) = shape, grid
    accs = [vector.ExtractOp(packed, [], [q]).result for q in range(ir.VectorType(packed.type).shape[0])]
    return to_blocked(kern, accs, wn, M // wm, N // wn, M, N, wm * wn * 32)


def store_from_registers(kern, store, packed, shape, grid):
    """A whole-tile store of a tile in the mma layout: each thread writes its pairs of adjacent elements
    (a quad covers 8 contiguous elements of a row), as 2-element vector stores when the window lies inside
    an aligned tensor, else element by element under the bounds."""
    (M, N), (wm, wn) = shape, grid
    WM, WN = M // wm, N // wn
    et = ir.VectorType(packed.type).element_type
    esize = elem_bytes(et)
    vals = [vector.ExtractOp(packed, [], [q]).result for q in range(ir.VectorType(packed.type).shape[0])]
    window = store.operands[0]
    base, r0, c0 = list(window.owner.operands)
    used = wm * wn * 32
    guard = None
    if used < kern.T:   # the warps beyond the grid hold no part of the tile
        guard = scf.IfOp(arith.CmpIOp(arith.CmpIPredicate.ult, kern.tid, F.cidx(used)).result, [], has_else=False)
    with ir.InsertionPoint(guard.then_block) if guard is not None else contextlib.nullcontext():
        flat, off0, sizes, strides = F.flat_global(base)
        coords = acc_coords(kern, wn, WM, WN)
        corner = arith.AddIOp(off0, arith.AddIOp(arith.MulIOp(r0, strides[0]).result,
                                                 arith.MulIOp(c0, strides[1]).result).result).result
        fast = None
        if arg_number(base) in kern.aligned_args:
            rows_in = arith.CmpIOp(arith.CmpIPredicate.ule, arith.AddIOp(r0, F.cidx(M)).result, sizes[0]).result
            cols_in = arith.CmpIOp(arith.CmpIPredicate.ule, arith.AddIOp(c0, F.cidx(N)).result, sizes[1]).result
            even = arith.CmpIOp(arith.CmpIPredicate.eq, arith.RemUIOp(corner, F.cidx(2)).result, F.cidx(0)).result
            fast = arith.AndIOp(arith.AndIOp(rows_in, cols_in).result, even).result
            br = scf.IfOp(fast, [], has_else=True)
            with ir.InsertionPoint(br.then_block):
                for q, (r, c) in enumerate(coords):
                    at = arith.AddIOp(corner, arith.AddIOp(arith.MulIOp(r, strides[0]).result, c).result).result
                    pair = vector.FromElementsOp(ir.VectorType.get([2], et), vals[2 * q:2 * q + 2]).result
                    vector.StoreOp(pair, flat, [at], alignment=2 * esize)
                scf.YieldOp([])
        with ir.InsertionPoint(br.else_block) if fast is not None else contextlib.nullcontext():
            for q, (r, c) in enumerate(coords):
                gr = arith.AddIOp(r0, r).result
                row_ok = arith.CmpIOp(arith.CmpIPredicate.ult, gr, sizes[0]).result
                for h in range(2):
                    gc = arith.AddIOp(c0, arith.AddIOp(c, F.cidx(h)).result).result
                    ok = arith.AndIOp(row_ok, arith.CmpIOp(arith.CmpIPredicate.ult, gc, sizes[1]).result).result
                    one = scf.IfOp(ok, [], has_else=False)
                    with ir.InsertionPoint(one.then_block):
                        at = arith.AddIOp(off0, arith.AddIOp(arith.MulIOp(gr, strides[0]).result,
                                                             arith.MulIOp(gc, strides[1]).result).result).result
                        memref.StoreOp(vals[2 * q + h], flat, [at])
                        scf.YieldOp([])
            if fast is not None:
                scf.YieldOp([])
        if guard is not None:
            scf.YieldOp([])
    kern._publish_store(window)
