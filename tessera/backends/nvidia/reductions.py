"""Reductions of tiles in the tile→gpu lowering (`tile.reduce`).

- Full reductions of f32/i32: per-thread fold, an xor butterfly over the warp, one value per warp
  through shared memory, then every thread folds the warp values (the result is uniform).
- Axis reductions with fewer outputs than threads: a power-of-two group of up to 32 threads per output
  folds every group-th element along the axis and combines by xor shuffles (`_group_reduce`).
- Otherwise the tile goes to shared memory and each thread folds the outputs it owns.
"""
from __future__ import annotations

from mlir import ir
from mlir.dialects import arith, gpu, memref, scf, vector

from . import fragments as F
from .common import align, elem_bytes


def lower(kern, op):
    from ...passes.lower_tile_to_gpu import _operand_types
    x = op.operands[0]
    kind = ir.StringAttr(op.attributes["kind"]).value
    axis = ir.IntegerAttr(op.attributes["axis"]).value
    xt = ir.RankedTensorType(_operand_types(op)[0])
    xs, et = list(xt.shape), xt.element_type
    is_f = not isinstance(et, ir.IntegerType)
    rshape = [s for d, s in enumerate(xs) if d != axis]
    ident = _identity(kind, et)
    if not rshape and str(et) in ("f32", "i32"):
        kern._replace(op, _shuffle_reduce(kern, x, xs, et, kind, is_f, ident, reused=bool(kern.scratch_views)
                                          or _in_loop(op)))
        return
    buf = kern._to_scratch(x, xs, et)
    if not rshape:
        # every thread folds the whole (small) row from shared memory: the result is uniform
        loop = scf.ForOp(F.cidx(0), F.cidx(xs[0]), F.cidx(1), [ident])
        with ir.InsertionPoint(loop.body):
            v = memref.LoadOp(buf, [loop.induction_variable]).result
            scf.YieldOp([_combine(kind, is_f, loop.inner_iter_args[0], v)])
        gpu.BarrierOp()
        kern._replace(op, loop.results[0])
        return
    n_out = F.numel(rshape)
    group = 1
    while group * 2 <= min(32, kern.T // n_out, xs[axis]):
        group *= 2
    if group > 1 and str(et) in ("f32", "i32"):
        kern._replace(op, _group_reduce(kern, buf, xs, axis, rshape, et, kind, is_f, ident, group))
        return
    k = kern.layout.frag_len(rshape)
    ridx = kern.layout.unravel(rshape)
    valid = kern.layout.valid(rshape)
    init = F.splat(ident, k)
    loop = scf.ForOp(F.cidx(0), F.cidx(xs[axis]), F.cidx(1), [init])
    with ir.InsertionPoint(loop.body):
        src = list(ridx)
        src.insert(axis, F.splat(loop.induction_variable, k))
        v = F.gather(buf, F.ravel(src, xs, k), valid, F.splat(ident, k), k, et)
        scf.YieldOp([_combine(kind, is_f, loop.inner_iter_args[0], v)])
    gpu.BarrierOp()
    kern._replace(op, loop.results[0])

def _group_reduce(kern, buf, xs, axis, rshape, et, kind, is_f, ident, group):
    """Axis reduction with `group` threads per output (fewer outputs than threads): thread t folds
    every group-th element of output t / group along the axis from shared memory, an xor butterfly
    over the group (a power of two within a warp) combines the partials, the group's first thread
    writes the output to shared memory, and the result tile is read back in the fragment layout."""
    n_in, n_out = F.numel(xs), F.numel(rshape)
    strides = [F.numel(xs[d + 1:]) for d in range(len(xs))]
    out_dims = [d for d in range(len(xs)) if d != axis]
    cg = F.cidx(group)
    o = arith.DivUIOp(kern.tid, cg).result
    lane = arith.RemUIOp(kern.tid, cg).result
    active = arith.CmpIOp(arith.CmpIPredicate.ult, o, F.cidx(n_out)).result
    oc = arith.SelectOp(active, o, F.cidx(0)).result      # idle threads fold output 0 and drop it
    base, rest = F.cidx(0), oc
    for j in range(len(out_dims) - 1, -1, -1):           # unravel the output index over rshape
        d = out_dims[j]
        coord = arith.RemUIOp(rest, F.cidx(xs[d])).result if j > 0 else rest
        rest = arith.DivUIOp(rest, F.cidx(xs[d])).result
        base = arith.AddIOp(base, arith.MulIOp(coord, F.cidx(strides[d])).result).result
    loop = scf.ForOp(lane, F.cidx(xs[axis]), cg, [ident])
    with ir.InsertionPoint(loop.body):
        at = arith.AddIOp(base, arith.MulIOp(loop.induction_variable, F.cidx(strides[axis])).result).result
        scf.YieldOp([_combine(kind, is_f, loop.inner_iter_args[0], memref.LoadOp(buf, [at]).result)])
    v = loop.results[0]
    i32 = ir.IntegerType.get_signless(32)
    width = arith.ConstantOp(i32, 32).result
    off = group // 2
    while off:
        sh = gpu.ShuffleOp(v, arith.ConstantOp(i32, off).result, width, gpu.ShuffleMode.XOR).results[0]
        v = _combine(kind, is_f, v, sh)
        off //= 2
    off_out = align(n_in * elem_bytes(et))
    kern.scratch_need = max(kern.scratch_need, off_out + n_out * elem_bytes(et))
    out = kern.smem_view(0, n_out, et)
    kern.scratch_views.append(out.owner)
    out.owner.attributes["tessera.scratch_offset"] = ir.IntegerAttr.get(ir.IntegerType.get_signless(64),
                                                                        off_out)
    first = arith.AndIOp(active, arith.CmpIOp(arith.CmpIPredicate.eq, lane, F.cidx(0)).result).result
    ifop = scf.IfOp(first, [], has_else=False)
    with ir.InsertionPoint(ifop.then_block):
        memref.StoreOp(v, out, [o])
        scf.YieldOp([])
    gpu.BarrierOp()
    k = kern.layout.frag_len(rshape)
    res = kern.layout.from_shared(out, rshape, F.splat(ident, k), k, et)
    gpu.BarrierOp()
    return res

def _in_loop(op) -> bool:
    p = op.parent
    while p is not None and p.name != "gpu.func":
        if p.name in ("scf.for", "scf.while", "scf.parallel"):
            return True
        p = p.parent
    return False


def _shuffle_reduce(kern, x, xs, et, kind, is_f, ident, reused=True):
    """Full reduction: per-thread fold, xor-butterfly over the warp, one value per warp
    through shared memory, then every thread folds the warp values (uniform result). reused: the
    scratch area may still be read by an earlier exchange (or the previous iteration of a loop), so the
    warp values wait for a barrier before they are written."""
    k = kern.layout.frag_len(xs)
    valid = kern.layout.valid(xs)
    if valid is not None:
        x = arith.SelectOp(valid, x, F.splat(ident, k)).result
    ck = vector.CombiningKind
    vkind = {"sum": ck.ADD, "max": ck.MAXIMUMF if is_f else ck.MAXSI, "min": ck.MINIMUMF if is_f else ck.MINSI}[kind]
    v = vector.ReductionOp(et, vkind, x, acc=ident).result
    i32 = ir.IntegerType.get_signless(32)
    width = arith.ConstantOp(i32, 32).result
    for off in (16, 8, 4, 2, 1):
        sh = gpu.ShuffleOp(v, arith.ConstantOp(i32, off).result, width, gpu.ShuffleMode.XOR).results[0]
        v = _combine(kind, is_f, v, sh)
    warps = kern.T // 32
    buf = kern.scratch(warps, et)
    c32 = F.cidx(32)
    warp = arith.DivUIOp(kern.tid, c32).result
    lane0 = arith.CmpIOp(arith.CmpIPredicate.eq, arith.RemUIOp(kern.tid, c32).result, F.cidx(0)).result
    if reused:
        gpu.BarrierOp()
    ifop = scf.IfOp(lane0, [], has_else=False)
    with ir.InsertionPoint(ifop.then_block):
        memref.StoreOp(v, buf, [warp])
        scf.YieldOp([])
    gpu.BarrierOp()
    r = memref.LoadOp(buf, [F.cidx(0)]).result
    for w in range(1, warps):
        r = _combine(kind, is_f, r, memref.LoadOp(buf, [F.cidx(w)]).result)
    # no barrier after these reads: every writer of the scratch area starts with one
    return r

def _identity(kind, et):
    if isinstance(et, ir.IntegerType):
        bits = et.width
        v = 0 if kind == "sum" else (-(1 << (bits - 1)) if kind == "max" else (1 << (bits - 1)) - 1)
        return arith.ConstantOp(et, ir.IntegerAttr.get(et, v)).result
    # -0.0, the additive identity of IEEE floats (x + -0.0 == x for every x, so LLVM drops it; not 0.0)
    v = -0.0 if kind == "sum" else (float("-inf") if kind == "max" else float("inf"))
    return arith.ConstantOp(et, ir.FloatAttr.get(et, v)).result

def _combine(kind, is_f, a, b):
    table = {"sum": (arith.AddFOp, arith.AddIOp), "max": (arith.MaximumFOp, arith.MaxSIOp),
             "min": (arith.MinimumFOp, arith.MinSIOp)}
    return table[kind][0 if is_f else 1](a, b).result
