"""Vector paths for tessera-lower-tile-to-cpu's window loads and stores (a helper of that pass, not a pass).

A bounds-checked `tile.load` lowered element by element is one branch and one scalar load per element,
which no compiler vectorises. Here the tile is moved a row chunk at a time with `vector.transfer_read` /
`vector.transfer_write`: the rows (every dimension but the innermost) are checked once per chunk, and the
innermost dimension's bound becomes the transfer's lane mask (a masked load or store). The elements and
the out-of-bounds `other` are exactly those of the scalar path.

A chunk takes the transfer when the array's innermost stride is 1 and the column offset is not negative
(the mask is computed from `size - offset`); otherwise (a transposed view, say) its lanes are moved one
by one with the scalar path's bounds checks. Statically, the window's innermost dimension must be the
array's innermost one, with no `mask` tile, a scalar `other`, and an element type of at least 8 bits
that is not fp8 (those have their own memref passes).
"""
from __future__ import annotations

from mlir import ir
from mlir.dialects import arith, memref, scf, tensor, vector

# Lanes moved by one transfer: a chunk of the innermost dimension (larger rows are walked in chunks)
CHUNK = 64
DYN = ir.ShapedType.get_dynamic_size() if hasattr(ir.ShapedType, "get_dynamic_size") else -(2 ** 63)


def _idx(v):
    return arith.ConstantOp(ir.IndexType.get(), v).result


def _chunk(n):
    if n <= CHUNK:
        return n
    return CHUNK if n % CHUNK == 0 else None


def supported(vi, elem_type) -> bool:
    """Whether this window can take the vector path (the static part of the conditions)."""
    if vi.squeeze[-1] or not vi.free or _chunk(vi.sizes[-1]) is None:
        return False
    width = getattr(elem_type, "width", 0)
    return width >= 8 and "f8" not in str(elem_type)


def _unit_stride_view(vi):
    """(i1: the array's innermost stride is 1 and the column offset is not negative, the array retyped
    with a static unit innermost stride for the transfers)."""
    mt = ir.MemRefType(vi.base.type)
    rank = len(mt.shape)
    md = memref.ExtractStridedMetadataOp(vi.base)
    offset, sizes, strides = md.results[1], list(md.results[2:2 + rank]), list(md.results[2 + rank:])
    layout = ir.StridedLayoutAttr.get(DYN, [DYN] * (rank - 1) + [1])
    unit_t = ir.MemRefType.get([DYN] * rank, mt.element_type, layout=layout, memory_space=mt.memory_space)
    view = memref.ReinterpretCastOp(unit_t, vi.base, [offset], sizes, strides[:-1],
                                    ir.DenseI64ArrayAttr.get([DYN]),
                                    ir.DenseI64ArrayAttr.get([DYN] * rank),
                                    ir.DenseI64ArrayAttr.get([DYN] * (rank - 1) + [1])).result
    ok = arith.CmpIOp(arith.CmpIPredicate.eq, strides[-1], _idx(1)).result
    col = vi.offsets[-1]
    nonneg = arith.CmpIOp(arith.CmpIPredicate.sge, col, _idx(0)).result
    return arith.AndIOp(ok, nonneg).result, view


def _chunks(vi, init, body):
    """Loops over the tile's rows and innermost-dimension chunks carrying `init` (a tensor, or None);
    body(tile_idx, array_idx, row_in_bounds, carried) returns the new carried value."""
    free_outer = vi.free[:-1]
    n, c = vi.sizes[-1], _chunk(vi.sizes[-1])
    dims = vi.dims()
    loops = [(vi.sizes[d], 1) for d in free_outer] + [(n, c)]
    carried = [init] if init is not None else []
    lanes, outer = [], []

    def rec(k, carry):
        lo = scf.ForOp(_idx(0), _idx(loops[k][0]), _idx(loops[k][1]), carry)
        if not outer:
            outer.append(lo)
        with ir.InsertionPoint(lo.body):
            lanes.append(lo.induction_variable)
            inner = list(lo.inner_iter_args)
            if k + 1 < len(loops):
                res = rec(k + 1, inner)
            else:
                lane_of = dict(zip(vi.free, lanes))
                idx, inb = [], None
                for d, off in enumerate(vi.offsets):
                    i = arith.AddIOp(off, lane_of[d]).result if d in lane_of else off
                    idx.append(i)
                    if d != len(vi.offsets) - 1:
                        ok = arith.CmpIOp(arith.CmpIPredicate.ult, i, dims[d]).result
                        inb = ok if inb is None else arith.AndIOp(inb, ok).result
                r = body(list(lanes), idx, inb, inner[0] if inner else None)
                res = [r] if r is not None else []
            scf.YieldOp(res)
            lanes.pop()
        return list(lo.results)
    res = rec(0, carried)
    return res[0] if res else None


def _vt(vi, et):
    return ir.VectorType.get([_chunk(vi.sizes[-1])], et)


def _minor(rank):
    return ir.AffineMapAttr.get(ir.AffineMap.get_minor_identity(rank, 1))


def _bools(v):
    return ir.ArrayAttr.get([ir.BoolAttr.get(v)])


def _lane_pos():
    return ir.DenseI64ArrayAttr.get([DYN])


def load(vi, result_type, pad):
    """The loaded tile, one chunk per transfer; chunks the fast path cannot take (a non-unit innermost
    stride, a negative column offset) are gathered lane by lane with the scalar path's bounds checks."""
    rt = ir.RankedTensorType(result_type)
    et, vt = rt.element_type, _vt(vi, rt.element_type)
    ok, view = _unit_stride_view(vi)
    last = len(vi.offsets) - 1
    dim_last = memref.DimOp(vi.base, _idx(last)).result

    def body(lanes, idx, inb, acc):
        fast = ok if inb is None else arith.AndIOp(ok, inb).result
        branch = scf.IfOp(fast, [vt], has_else=True)
        with ir.InsertionPoint(branch.then_block):
            read = lambda inb: [vector.TransferReadOp(   # noqa: E731
                vt, view, idx, _minor(len(idx)), pad, _bools(inb)).result]
            scf.YieldOp(_either(_whole_chunk(idx[last], vt, dim_last), [vt], lambda: read(True), lambda: read(False)))
        with ir.InsertionPoint(branch.else_block):
            gather = scf.ForOp(_idx(0), _idx(vt.shape[0]), _idx(1), [vector.BroadcastOp(vt, pad).result])
            with ir.InsertionPoint(gather.body):
                lane = gather.induction_variable
                col, e_ok = _lane(idx[last], lane, dim_last, inb)
                get = scf.IfOp(e_ok, [et], has_else=True)
                with ir.InsertionPoint(get.then_block):
                    scf.YieldOp([memref.LoadOp(vi.base, idx[:-1] + [col]).result])
                with ir.InsertionPoint(get.else_block):
                    scf.YieldOp([pad])
                scf.YieldOp([vector.InsertOp(get.result, gather.inner_iter_args[0], [lane], _lane_pos()).result])
            scf.YieldOp([gather.results[0]])
        return vector.TransferWriteOp(rt, branch.result, acc, lanes, _minor(len(lanes)), _bools(True)).result
    return _chunks(vi, tensor.EmptyOp(list(rt.shape), et).result, body)


def store(vi, value):
    """Store `value` (a tile, or a scalar for every element) one chunk per masked transfer; chunks the
    fast path cannot take are stored lane by lane with the scalar path's bounds checks."""
    is_tile = isinstance(value.type, ir.RankedTensorType)
    et = ir.RankedTensorType(value.type).element_type if is_tile else value.type
    vt = _vt(vi, et)
    ok, view = _unit_stride_view(vi)
    last = len(vi.offsets) - 1
    dim_last = memref.DimOp(vi.base, _idx(last)).result
    splat = None if is_tile else vector.BroadcastOp(vt, value).result

    def body(lanes, idx, inb, _):
        v = splat
        if is_tile:
            zero = arith.ConstantOp(et, _zero_attr(et)).result
            v = vector.TransferReadOp(vt, value, lanes, _minor(len(lanes)), zero, _bools(True)).result
        fast = ok if inb is None else arith.AndIOp(ok, inb).result
        branch = scf.IfOp(fast, [], has_else=True)
        with ir.InsertionPoint(branch.then_block):
            def write(inb):
                vector.TransferWriteOp(None, v, view, idx, _minor(len(idx)), _bools(inb))
                return []
            _either(_whole_chunk(idx[last], vt, dim_last), [], lambda: write(True), lambda: write(False))
            scf.YieldOp([])
        with ir.InsertionPoint(branch.else_block):
            scatter = scf.ForOp(_idx(0), _idx(vt.shape[0]), _idx(1))
            with ir.InsertionPoint(scatter.body):
                lane = scatter.induction_variable
                col, e_ok = _lane(idx[last], lane, dim_last, inb)
                put = scf.IfOp(e_ok, [], has_else=False)
                with ir.InsertionPoint(put.then_block):
                    x = vector.ExtractOp(v, [lane], _lane_pos()).result
                    memref.StoreOp(x, vi.base, idx[:-1] + [col])
                    scf.YieldOp([])
                scf.YieldOp([])
            scf.YieldOp([])
        return None
    _chunks(vi, None, body)


def _lane(col0, lane, dim, row_ok):
    """(column, i1: this lane of the chunk is in bounds) on the lane-by-lane path."""
    col = arith.AddIOp(col0, lane).result
    ok = arith.CmpIOp(arith.CmpIPredicate.ult, col, dim).result
    return col, ok if row_ok is None else arith.AndIOp(row_ok, ok).result


def _whole_chunk(col, vt, dim):
    """i1: the chunk at column `col` lies inside the row (an unmasked transfer)."""
    end = arith.AddIOp(col, _idx(vt.shape[0])).result
    return arith.CmpIOp(arith.CmpIPredicate.ule, end, dim).result


def _either(cond, types, then_fn, else_fn):
    """scf.if with then_fn() / else_fn() (each returns its branch's results) as its branches."""
    op = scf.IfOp(cond, types, has_else=True)
    for blk, fn in ((op.then_block, then_fn), (op.else_block, else_fn)):
        with ir.InsertionPoint(blk):
            scf.YieldOp(fn())
    return list(op.results)


def _zero_attr(et):
    return ir.FloatAttr.get(et, 0.0) if isinstance(et, ir.FloatType) else ir.IntegerAttr.get(et, 0)
