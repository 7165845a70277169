"""sm_90a: a `tessera.wgmma`-marked K loop → TMA loads into `num_stages` shared-memory slots,
mbarrier waits and `wgmma.mma_async` on f32 warpgroup accumulators.

Mirrors the verified probe kernel (reference/mlir-nvidia-probe.md §1), generalised to BM×64 A and
64×BN B tiles, BN any multiple of 8 up to 256: A is one BM×64 box and B ⌈BN/64⌉ boxes of 64×64, all
128-byte swizzled (wgmma's N = BN reads the first BN columns; TMA zero-fills past the tensor). With two
consumer warpgroups (8 warps) warpgroup g computes rows g·BM/2 .. of the tile from the same slots
(its A descriptor starts BM/2 rows in); each warpgroup holds (BM / warpgroups)×BN accumulators, as
one 64×BN accumulator per 64 rows (nvgpu's store of a taller accumulator puts its second 64-row
block BN/2 rows down, so each block is its own wgmma chain and store). thread 0 arms the slot's
mbarrier with the transaction bytes and issues the copies, every thread waits on the slot's parity,
then the warpgroup issues the wgmma groups of iteration i (B transposed, as it is K×N row-major) and
waits until only iteration i's groups are in flight (`wgmma.wait_group 1` for one accumulator), so
the tensor pipe never drains inside the loop; every thread then arrives on the "empty" mbarrier of the slot the retired group i - 1 read, and
thread 0 waits for that release (no CTA barrier) before refilling the slot with the loads of iteration
i + num_stages - 1. After the loop `wgmma.wait_group 0`, then the accumulator goes
through shared memory into the fragment layout.
The TMA descriptors are kernel arguments (pointers to 128-byte CUtensorMaps, encoded on the host
by `tessera.runtime.tma`).
"""
from __future__ import annotations

import contextlib

from mlir import ir
from mlir.dialects import arith, builtin, gpu, memref, nvgpu, nvvm, scf

from ...ir import builders as tb
from . import fragments as F
from .common import arg_number, next_slot

PAD = 8   # f32 words added to each accumulator row in shared memory: the 4 rows of a half-warp's v2 stores hit 4 disjoint sets of 8 banks


PRODUCER_REGS = 40                   # setmaxnreg.dec of the TMA producer warpgroup
CONSUMER_REGS = {1: 240, 2: 232}     # setmaxnreg.inc: (MAX_REGS·T − 40·128) / (128·consumers), ≤ 240
MAX_REGS = {256: 248, 384: 168}      # .maxnreg of the kernel: its launch budget fits 64K registers


def _produce(kern, groups, stages, lb, ub, step, empty, consumer_loop, issue):
    """The producer warpgroup: its first thread walks the K loop issuing the TMA loads of iteration i into
    slot i % S once the consumers released that slot's previous use (iteration i − S) on its empty
    barrier."""
    leader = scf.IfOp(arith.CmpIOp(arith.CmpIPredicate.eq, kern.tid, F.cidx(groups * 128)).result, [],
                      has_else=False)
    with ir.InsertionPoint(leader.then_block):
        produce = scf.ForOp(lb, ub, step)
        with ir.InsertionPoint(produce.body):
            i = arith.DivUIOp(arith.SubIOp(produce.induction_variable, lb).result, step).result
            slot = arith.RemUIOp(i, F.cidx(stages)).result
            reuse = scf.IfOp(arith.CmpIOp(arith.CmpIPredicate.uge, i, F.cidx(stages)).result, [], has_else=False)
            with ir.InsertionPoint(reuse.then_block):
                ph = arith.CmpIOp(arith.CmpIPredicate.ne, arith.RemUIOp(arith.SubIOp(
                    arith.DivUIOp(i, F.cidx(stages)).result, F.cidx(1)).result, F.cidx(2)).result, F.cidx(0)).result
                nvgpu.MBarrierTryWaitParityOp(empty, ph, F.cidx(10000000), arith.AddIOp(slot, F.cidx(stages)).result)
                scf.YieldOp([])
            issue(slot, consumer_loop.induction_variable, produce.induction_variable, consumer_loop.body, [])
            scf.YieldOp([])
        scf.YieldOp([])


def tile_shape(loop):
    """(BM, BN) of a marked loop."""
    _, a_ld, b_ld, _, _ = pattern(loop)
    return list(ir.RankedTensorType(a_ld.results[0].type).shape)[0], \
        list(ir.RankedTensorType(b_ld.results[0].type).shape)[1]


def _t(s):
    return ir.Type.parse(s)


def pattern(loop):
    body = loop.regions[0].blocks[0]
    mma = next(op.operation for op in body.operations if op.operation.name == "tile.mma")
    a, b, _ = tb.operands(mma)
    a_ld, b_ld = a.owner, b.owner
    return mma, a_ld, b_ld, a_ld.operands[0].owner, b_ld.operands[0].owner


def _clone_slice(v, iv_src, iv_dst, block, memo):
    """`v` recomputed with the loop variable `iv_src` replaced by `iv_dst` (ops of `block` cloned
    at the current insertion point; values from outside are reused)."""
    if v == iv_src:
        return iv_dst
    owner = v.owner
    if isinstance(owner, ir.Block) or owner.operation.block != block:
        return v
    for src, done in memo:
        if src == owner.operation:
            return done.results[v.result_number]
    mapped = [_clone_slice(o, iv_src, iv_dst, block, memo) for o in owner.operation.operands]
    new = owner.operation.clone()  # after its operands, at the current insertion point
    for i, o in enumerate(mapped):
        new.operands[i] = o
    memo.append((owner.operation, new))
    return new.results[v.result_number]


def _direct_store(kern, loop, bm, bn):
    """The accumulator's only use, when it is an unmasked `tile.store` of the whole BM×BN f32 tile to a
    global window: the epilogue then copies shared memory to global memory directly."""
    uses = list(loop.results[0].uses)
    if len(uses) != 1:
        return None
    op = uses[0].owner
    if op.name != "tile.store" or len(op.operands) != 2 or op.operands[1] != loop.results[0]:
        return None
    window = op.operands[0]
    if not tb.is_window(window.type) or tuple(tb.window_shape_elem(window.type)[0]) != (bm, bn) \
            or str(tb.window_shape_elem(window.type)[1]) != "f32":
        return None
    vop = window.owner
    if any(bool(x) for x in ir.DenseI64ArrayAttr(vop.attributes["squeeze"])) or len(list(vop.operands)) != 3:
        return None
    return op


def _only_store_follows(kern, loop, bm, bn):
    """Whether the K loop sits at the kernel's top level and everything after it is the direct store of
    its result (plus the store's window and scalar index arithmetic): then the consumers can run the rest
    of the kernel alone (a warp-specialised kernel whose roles never share code)."""
    if loop.operation.block != kern.blk or _direct_store(kern, loop, bm, bn) is None:
        return False
    seen = False
    for op in kern.blk.operations:
        name = op.operation.name
        if seen and name not in ("gpu.return", "tile.store", "tile.view", "tile.program_id", "tile.num_programs") \
                and not (name.startswith("arith.") and all(isinstance(r.type, ir.IndexType) for r in op.results)):
            return False
        seen = seen or op.operation == loop.operation
    return True


def _copy_out(kern, sflat, store, bm, bn, threads=None):
    """The BM×BN f32 accumulator (rows BN + PAD apart in shared memory) → the store's global window, by
    `threads` threads (default: the CTA)."""
    base, m0, n0 = list(store.operands[0].owner.operands)
    F.copy_tile_out(kern.tid, threads or kern.T, sflat, bn + PAD, bm, bn, ir.F32Type.get(), base, m0, n0,
                    arg_number(base) in kern.aligned_args)


def store_accumulators(kern, accs, base, group, rows, pitch, bn):
    """A warpgroup's 64×bn accumulators (one per 64 of its `rows`) → shared memory at byte `base`, f32 rows
    `pitch` words apart, warpgroup `group` (None: one warpgroup) `rows` rows down."""
    space = "#gpu.address_space<workgroup>"
    at = F.cidx(base)
    if group is not None and rows != 64:
        # the store's lowering places a thread's rows by its warp index (16·warp, not modulo the
        # warpgroup), i.e. warpgroup g already 64·g rows down: shift by the rest of its g·rows
        at = arith.AddIOp(at, arith.MulIOp(group, F.cidx((rows - 64) * pitch * 4)).result).result
    for p, acc in enumerate(accs):
        # (the verifier wants the accumulator's shape; warpgroup 1's rows lie past it, inside the region)
        padded = memref.ViewOp(_t(f"memref<64x{pitch}xf32, {space}>"), kern.smem,
                               arith.AddIOp(at, F.cidx(p * 64 * pitch * 4)).result if p else at, []).result
        sD = memref.SubViewOp(_t(f"memref<64x{bn}xf32, strided<[{pitch}, 1]>, {space}>"), padded,
                              [], [], [], [0, 0], [64, bn], [1, 1]).result
        nvgpu.WarpgroupMmaStoreOp(acc, sD)


def rewrite(kern, loop, desc_a, desc_b, stages):
    mma, a_ld, b_ld, va, vb = pattern(loop)
    et = ir.MemRefType(va.operands[0].type).element_type
    bm, bn = tile_shape(loop)
    ws = kern.warp_specialize
    groups = kern.T // 128 - (1 if ws else 0)   # consumer warpgroups (with ws the last one produces)
    rows = bm // groups                  # accumulator rows per warpgroup
    # one accumulator per 64 rows: nvgpu's store of a taller accumulator places its second 64-row block
    # BN/2 rows down (not 64), so each block is its own wgmma chain and its own store
    parts = rows // 64
    boxes = -(-bn // 64)                 # B arrives as whole 64-column boxes; wgmma reads the first bn columns
    a_bytes, slot_bytes, pitch = bm * 128, bm * 128 + boxes * 8192, bn + PAD
    space = "#gpu.address_space<workgroup>"
    tmA = _t(f"!nvgpu.tensormap.descriptor<tensor = memref<{bm}x64x{et}, 3>, swizzle = swizzle_128b, "
             "l2promo = none, oob = zero, interleave = none>")
    tmB = _t(f"!nvgpu.tensormap.descriptor<tensor = memref<64x64x{et}, 3>, swizzle = swizzle_128b, "
             "l2promo = none, oob = zero, interleave = none>")
    # barriers 0..S-1 "full" (thread 0 arms them, the TMA completes them), S..2S-1 "empty" (every thread
    # arrives once its wgmma group that read the slot retired); one group: CSE would merge two creates
    bar_t = _t(f"!nvgpu.mbarrier.group<memorySpace = {space}, num_barriers = {2 * stages}>")
    acc_t = _t(f"!nvgpu.warpgroup.accumulator<fragmented = vector<64x{bn}xf32>>")
    sA_t = _t(f"memref<{bm}x64x{et}, {space}>")
    sAw_t = _t(f"memref<64x64x{et}, {space}>")
    sB_t = _t(f"memref<64x{bn}x{et}, {space}>")
    sBh_t = _t(f"memref<64x64x{et}, {space}>")
    dA_t = _t(f"!nvgpu.warpgroup.descriptor<tensor = memref<64x64x{et}, 3>>")
    dB_t = _t(f"!nvgpu.warpgroup.descriptor<tensor = memref<64x{bn}x{et}, 3>>")
    base = kern.reserve(max(stages * slot_bytes, bm * pitch * 4), 1024)
    old_body = loop.regions[0].blocks[0]
    lb, ub, step = list(loop.operands)[:3]
    iv_old = old_body.arguments[0]
    group = None

    def view(t, byte_off):
        return memref.ViewOp(t, kern.smem, byte_off, []).result

    def slot_off(slot, extra=0):
        return arith.AddIOp(F.cidx(base + extra), arith.MulIOp(slot, F.cidx(slot_bytes)).result).result

    def issue(slot, iv_src, iv_new, block, memo):
        """TMA loads of the tiles of the iteration whose loop variable is iv_new (offsets are
        recomputed from iv_src, the loop variable they are written in terms of)."""
        k_a = _clone_slice(va.operands[2], iv_src, iv_new, block, memo)
        m_0 = _clone_slice(va.operands[1], iv_src, iv_new, block, memo)
        k_b = _clone_slice(vb.operands[1], iv_src, iv_new, block, memo)
        n_0 = _clone_slice(vb.operands[2], iv_src, iv_new, block, memo)
        nvgpu.MBarrierArriveExpectTxOp(bar, F.cidx(slot_bytes), slot)
        nvgpu.TmaAsyncLoadOp(view(sA_t, slot_off(slot)), bar, dA, [k_a, m_0], slot)
        for j in range(boxes):
            n_j = arith.AddIOp(n_0, F.cidx(64 * j)).result if j else n_0
            nvgpu.TmaAsyncLoadOp(view(sBh_t, slot_off(slot, a_bytes + 8192 * j)), bar, dB, [n_j, k_b], slot)

    with ir.InsertionPoint(loop), loop.location:
        if groups > 1:
            group = arith.DivUIOp(kern.tid, F.cidx(128)).result
        dA = builtin.UnrealizedConversionCastOp([tmA], [desc_a]).results[0]
        dB = builtin.UnrealizedConversionCastOp([tmB], [desc_b]).results[0]
        bar = empty = nvgpu.MBarrierCreateOp(bar_t).result
        is0 = arith.CmpIOp(arith.CmpIPredicate.eq, kern.tid, F.cidx(0)).result
        init = scf.IfOp(is0, [], has_else=False)
        with ir.InsertionPoint(init.then_block):
            for s in range(stages):
                nvgpu.MBarrierInitOp(bar, F.cidx(1), F.cidx(s))
                nvgpu.MBarrierInitOp(empty, F.cidx(groups * 128), F.cidx(stages + s))
            nvvm.FenceMbarrierInitOp()  # make the initialised barriers visible to the async proxy
            nvgpu.TmaPrefetchOp(dA)
            nvgpu.TmaPrefetchOp(dB)
            scf.YieldOp([])
        gpu.BarrierOp()
        span = arith.SubIOp(ub, lb).result
        nk = arith.DivUIOp(arith.AddIOp(span, arith.SubIOp(step, F.cidx(1)).result).result, step).result
        for s in range(0 if ws else stages - 1):
            cond = arith.AndIOp(is0, arith.CmpIOp(arith.CmpIPredicate.ult, F.cidx(s), nk).result).result
            pre = scf.IfOp(cond, [], has_else=False)
            with ir.InsertionPoint(pre.then_block):
                iv_s = arith.AddIOp(lb, arith.MulIOp(F.cidx(s), step).result).result
                issue(F.cidx(s), iv_old, iv_s, old_body, [])
                scf.YieldOp([])
        roles = None
        # split: the rest of the kernel joins the consumers' branch, so the two roles never share code
        # and each can own its register budget (setmaxnreg); only for a K loop at the kernel's top level
        split = ws and _only_store_follows(kern, loop, bm, bn)
        if ws:   # the producer warpgroup's branch is filled in below, once the consumers' loop exists
            producer = arith.CmpIOp(arith.CmpIPredicate.uge, kern.tid, F.cidx(groups * 128)).result
            roles = scf.IfOp(producer, [] if split else [acc_t] * parts, has_else=True)
        with ir.InsertionPoint(roles.else_block) if ws else contextlib.nullcontext():
            if split:
                nvvm.SetMaxRegisterOp(CONSUMER_REGS[groups], nvvm.SetMaxRegisterAction.increase)
            guard = None
            if not ws:
                # a K loop that may not run: the accumulator's zeros for that case are made after the
                # loop's last wait (ptxas serialises every wgmma when non-wgmma definitions of the
                # accumulator registers lie between a wgmma and its wait in the code)
                guard = scf.IfOp(arith.CmpIOp(arith.CmpIPredicate.ugt, nk, F.cidx(0)).result, [acc_t] * parts, has_else=True)
            with ir.InsertionPoint(guard.then_block) if guard is not None else contextlib.nullcontext():
                acc0 = [nvgpu.WarpgroupMmaInitAccumulatorOp(acc_t).result for _ in range(parts)]
                # carried: iteration i's slot (i % S) and the slot's phase ((i / S) % 2)
                new = scf.ForOp(lb, ub, step, [*acc0, F.cidx(0), F.cidx(0)])
    with ir.InsertionPoint(new.body), loop.location:
        y = scf.YieldOp(list(new.inner_iter_args))
    for op in list(old_body.operations):
        if op.operation.name == "scf.yield":
            continue
        op.operation.move_before(y)
    iv_old.replace_all_uses_with(new.induction_variable)
    with ir.InsertionPoint(y), loop.location:
        iv = new.induction_variable
        *accs, slot, phase = list(new.inner_iter_args)
        parity = arith.CmpIOp(arith.CmpIPredicate.ne, phase, F.cidx(0)).result
        first_slot = arith.CmpIOp(arith.CmpIPredicate.eq, slot, F.cidx(0)).result
        nvgpu.MBarrierTryWaitParityOp(bar, parity, F.cidx(10000000), slot)
        a_at = slot_off(slot)
        if group is not None:             # this warpgroup's rows of A
            a_at = arith.AddIOp(a_at, arith.MulIOp(group, F.cidx(rows * 128)).result).result
        gB = nvgpu.WarpgroupGenerateDescriptorOp(dB_t, view(sB_t, slot_off(slot, a_bytes)), dB).result
        # each part commits its group; the last waits until this iteration's groups are the only ones in
        # flight: the MMAs of iteration i run on while the slot of iteration i - 1 (whose groups that wait
        # retired) is refilled. (nvgpu always waits after a commit: the earlier parts wait for nothing,
        # at most parts + p + 1 groups being in flight after part p's commit.)
        md = []
        for p, acc in enumerate(accs):
            at = arith.AddIOp(a_at, F.cidx(p * 64 * 128)).result if p else a_at
            gA = nvgpu.WarpgroupGenerateDescriptorOp(dA_t, view(sAw_t, at), dA).result
            md.append(nvgpu.WarpgroupMmaOp(acc_t, gA, gB, acc, transposeB=True,
                                           waitGroup=parts if p == parts - 1 else parts + p + 1).result)
        # group i - 1 is retired for this thread: release slot (i - 1) % S on its empty barrier (no CTA
        # barrier: the other warps go on to iteration i + 1 while the slot is refilled)
        prev = arith.SelectOp(first_slot, F.cidx(stages - 1), arith.SubIOp(slot, F.cidx(1)).result).result   # (i-1) % S
        not_first = arith.CmpIOp(arith.CmpIPredicate.ne, iv, lb).result
        release = scf.IfOp(not_first, [], has_else=False)
        with ir.InsertionPoint(release.then_block):
            nvgpu.MBarrierArriveOp(empty, arith.AddIOp(prev, F.cidx(stages)).result)
            scf.YieldOp([])
        if not ws:
            iv_j = arith.AddIOp(iv, arith.MulIOp(F.cidx(stages - 1), step).result).result
            cond = arith.AndIOp(is0, arith.CmpIOp(arith.CmpIPredicate.slt, iv_j, ub).result).result   # i + S - 1 runs
            refill = scf.IfOp(cond, [], has_else=False)
            with ir.InsertionPoint(refill.then_block):
                # the slot's last reader was iteration i - 1: wait for that use's release (phase (i - 1) / S)
                used = scf.IfOp(not_first, [], has_else=False)
                with ir.InsertionPoint(used.then_block):
                    # iteration i - 1's phase: the slot's, or the other one when i starts a round of slots
                    ph = arith.CmpIOp(arith.CmpIPredicate.ne, arith.SelectOp(
                        first_slot, arith.SubIOp(F.cidx(1), phase).result, phase).result, F.cidx(0)).result
                    nvgpu.MBarrierTryWaitParityOp(empty, ph, F.cidx(10000000), arith.AddIOp(prev, F.cidx(stages)).result)
                    scf.YieldOp([])
                issue(prev, new.induction_variable, iv_j, new.body, [])   # slot (i + S - 1) % S
                scf.YieldOp([])
        y.operands[parts], wrap = next_slot(slot, stages)
        y.operands[parts + 1] = arith.SelectOp(wrap, arith.SubIOp(F.cidx(1), phase).result, phase).result
    for p in range(parts):
        y.operands[p] = md[p]
    results = list(new.results)[:parts]
    if split:
        with ir.InsertionPoint.after(new), loop.location:
            wait = nvvm.WgmmaWaitGroupSyncOp(0)
            done = scf.YieldOp([])
        rest, seen = [], False
        for op in kern.blk.operations:
            if seen and op.operation.name != "gpu.return":
                rest.append(op.operation)
            seen = seen or op.operation == loop.operation
        for op in rest:
            op.move_before(done)
        with ir.InsertionPoint(roles.then_block), loop.location:
            nvvm.SetMaxRegisterOp(PRODUCER_REGS, nvvm.SetMaxRegisterAction.decrease)
            _produce(kern, groups, stages, lb, ub, step, empty, new, issue)
            scf.YieldOp([])
        kern.consumer_regions.append((roles.operation, groups * 128))
        kern.g.attributes["nvvm.maxnreg"] = ir.IntegerAttr.get(ir.IntegerType.get_signless(32), MAX_REGS[kern.T])
        after = wait
    else:
        with ir.InsertionPoint.after(new), loop.location:
            nvvm.WgmmaWaitGroupSyncOp(0)          # the last group, before the accumulator is read
            scf.YieldOp(results)
        other = roles if ws else guard            # the producer's (empty) accumulator, or the zero-trip one
        with ir.InsertionPoint(other.then_block if ws else other.else_block), loop.location:
            if ws:
                _produce(kern, groups, stages, lb, ub, step, empty, new, issue)
            scf.YieldOp([nvgpu.WarpgroupMmaInitAccumulatorOp(acc_t).result for _ in range(parts)])
        results, after = list(other.results), other
    store = _direct_store(kern, loop, bm, bn)
    with ir.InsertionPoint.after(after), loop.location:
        gpu.BarrierOp()   # every warpgroup's last group has read its slot before the epilogue overwrites the slots
        row_pitch = pitch if store is not None else bn   # rows PAD words apart for the direct copy
        consumer = None
        if ws and not split:    # the producer's (empty) accumulator stays out of the tile
            consumer = scf.IfOp(arith.CmpIOp(arith.CmpIPredicate.ult, kern.tid, F.cidx(groups * 128)).result, [],
                                has_else=False)
        with ir.InsertionPoint(consumer.then_block) if consumer is not None else contextlib.nullcontext():
            store_accumulators(kern, results, base, group, rows, row_pitch, bn)
            if consumer is not None:
                scf.YieldOp([])
        gpu.BarrierOp()
        if store is None:
            flat = view(_t(f"memref<{bm * bn}xf32, {space}>"), F.cidx(base))
            k = kern.layout.frag_len([bm, bn])
            frag = kern.layout.from_shared(flat, [bm, bn], F.vsplat_const(0.0, ir.F32Type.get(), k), k,
                                           ir.F32Type.get())
            gpu.BarrierOp()
    if store is not None:
        # at the store (its window's offsets are computed after the loop); the accumulator region is
        # reserved, so nothing in between overwrites it
        with ir.InsertionPoint(store), store.location:
            _copy_out(kern, view(_t(f"memref<{bm * pitch}xf32, {space}>"), F.cidx(base)), store, bm, bn,
                      groups * 128 if split else None)
            gpu.BarrierOp()
        store.erase()
    else:
        loop.results[0].replace_all_uses_with(frag)

    if kern.tile_loop is not None:   # the next program initialises the barriers again
        kern.tile_loop.invalidate_barriers(bar, 2 * stages)
    old_yield = old_body.operations[len(old_body.operations) - 1]
    old_yield.operands[0] = old_body.arguments[1]  # drop the yield's use of the mma before erasing
    for dead in (mma, a_ld, b_ld, va, vb):
        dead.erase()
    loop.erase()
