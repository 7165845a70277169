"""Blocked fragments: how the generic SIMT lowering spreads a tile over a CTA.

A tile of N elements (row-major flat index e) is held by T = num_warps·32 threads as a
`vector<K x elem>` per thread. Thread t owns runs of V contiguous elements: slot j holds
e = (j / V)·T·V + t·V + (j % V). The longest run is 16 bytes of the kernel's narrowest global element
type (`Layout.run`: 8 elements for kernels on 16- or 8-bit tensors, else 4). K = ceil(N / T) rounded up
to a multiple of the run (or of 4 from 3) up to MAX_RUN_SLOTS, and V follows from K alone
(`Layout.vector_width`), so every tile of one shape has one layout in a kernel. Fragments beyond
MAX_RUN_SLOTS (32) keep V = 1, the thread-cyclic layout (slot j holds e = t + j·T): unrolled runs of
64 slots measured spills. Tensor-core operands and accumulators do not use these fragments (the MMA
layouts of `mma_pipeline` / `mma_sync`). Runs become aligned vector accesses of up to 16 bytes on tensors of
the aligned stride class (`load_runs`, `store_runs`). Elementwise ops keep the layout, so they are
plain vector ops; anything that moves elements between threads (broadcast, reduction, transpose, mma)
goes through shared memory.
"""
from __future__ import annotations

import contextlib
import math

import numpy as np
from mlir import ir
from mlir.dialects import arith, memref, scf, vector

from . import predicated
from .common import elem_bytes


def numel(shape) -> int:
    return int(np.prod(shape)) if len(shape) else 1


MAX_RUN_SLOTS = 32   # larger fragments stay thread-cyclic: unrolled runs cost registers


def frag_len(shape, threads: int, run: int = 4) -> int:
    """Slots per thread: ceil(N / T), rounded up to a multiple of 4 from 3 (of `run` from `run`) up to
    MAX_RUN_SLOTS."""
    k = max(1, math.ceil(numel(shape) / threads))
    if run <= k <= MAX_RUN_SLOTS:
        return (k + run - 1) // run * run
    if 3 <= k <= MAX_RUN_SLOTS:
        return (k + 3) // 4 * 4
    return k


def vector_width(k: int, run: int = 4) -> int:
    """Contiguous elements per run of a k-slot fragment (1: thread-cyclic)."""
    if k > MAX_RUN_SLOTS:
        return 1
    for v in (run, 4, 2):
        if v <= run and k % v == 0:
            return v
    return 1


def index_t():
    return ir.IndexType.get()


def cidx(v: int):
    return arith.ConstantOp(index_t(), v).result


def vconst(values, elem):
    vt = ir.VectorType.get([len(values)], elem)
    if isinstance(elem, ir.IndexType) or isinstance(elem, ir.IntegerType):
        arr = np.array(values, dtype=np.int64 if isinstance(elem, ir.IndexType) else
                       {1: np.bool_, 8: np.int8, 16: np.int16, 32: np.int32, 64: np.int64}[elem.width])
    else:
        arr = np.array(values, dtype=np.float32)
    if isinstance(elem, ir.IndexType):
        attr = ir.DenseElementsAttr.get(arr, type=vt)
    else:
        attr = ir.DenseElementsAttr.get_splat(vt, _scalar_attr(values[0], elem)) if len(set(values)) == 1 else \
            ir.DenseElementsAttr.get(arr, type=vt)
    return arith.ConstantOp(vt, attr).result


def _scalar_attr(v, elem):
    if isinstance(elem, (ir.IntegerType, ir.IndexType)):
        return ir.IntegerAttr.get(elem, int(v))
    return ir.FloatAttr.get(elem, float(v))


def splat(value, k: int):
    return vector.BroadcastOp(ir.VectorType.get([k], value.type), value).result


def vsplat_const(v, elem, k):
    vt = ir.VectorType.get([k], elem)
    return arith.ConstantOp(vt, ir.DenseElementsAttr.get_splat(vt, _scalar_attr(v, elem))).result


class Layout:
    """Per-function helper: thread id, lane vectors and masks for each fragment length."""

    def __init__(self, threads: int, tid, anchor, run: int = 4):
        self.T = threads
        self.run = run          # the longest run: 16 bytes of the kernel's narrowest global element type
        self.tid = tid
        self.anchor = anchor  # cached values are built before this op, so they dominate every use
        self._lanes = {}
        self._split = {}

    def frag_len(self, shape) -> int:
        return frag_len(shape, self.T, self.run)

    def vector_width(self, k: int) -> int:
        return vector_width(k, self.run)

    def lanes(self, k: int):
        """vector<k x index>: the flat element indices this thread owns (runs of vector_width(k))."""
        if k not in self._lanes:
            v = self.vector_width(k)
            with ir.InsertionPoint(self.anchor), self.anchor.location:
                first = arith.MulIOp(self.tid, cidx(v)).result if v > 1 else self.tid
                base = splat(first, k)
                steps = vconst([(j // v) * self.T * v + j % v for j in range(k)], index_t())
                self._lanes[k] = arith.AddIOp(base, steps).result
        return self._lanes[k]

    def valid(self, shape):
        """i1 mask of owned elements that exist (None when every lane is real)."""
        n, k = numel(shape), self.frag_len(shape)
        if n == k * self.T:
            return None
        return arith.CmpIOp(arith.CmpIPredicate.ult, self.lanes(k), splat(cidx(n), k)).result

    def shared_offsets(self, k, row_pitch=None):
        """(flat offsets, run width) of the owned elements in a shared buffer: row-major, or with
        row_pitch = (cols, pitch) rows `pitch` elements apart."""
        lanes, v = self.lanes(k), self.vector_width(k)
        if row_pitch is None:
            return lanes, v
        cols, pitch = row_pitch
        pad = arith.MulIOp(arith.DivUIOp(lanes, splat(cidx(cols), k)).result, splat(cidx(pitch - cols), k)).result
        return arith.AddIOp(lanes, pad).result, (v if cols % v == 0 else 1)

    def to_shared(self, buf, shape, value, k, row_pitch=None, mask=None):
        """Store a fragment into a flat shared buffer in the tile's row-major order (rows `pitch` apart
        with row_pitch = (cols, pitch)): one vector store per run (conflict-free: a warp writes
        contiguous 8- or 16-byte pieces), masked at the padding (and by `mask`, a fragment of the tile)."""
        from .runs import store_runs
        at, v = self.shared_offsets(k, row_pitch)
        store_runs(buf, at, and_masks(self.valid(shape), mask), value, k, v)

    def from_shared(self, buf, shape, passthru, k, elem, row_pitch=None):
        """The fragment of a tile stored in a flat shared buffer as to_shared stores it (vector loads per run)."""
        from .runs import load_runs
        at, v = self.shared_offsets(k, row_pitch)
        return load_runs(buf, at, self.valid(shape), passthru, k, elem, v)

    def unravel(self, shape, e=None):
        """Per-dim index vectors of the owned elements of a tile of this shape."""
        k = self.frag_len(shape)
        if e is None:
            split = self._split_unravel(shape, k)
            if split is not None:
                return split
        e = self.lanes(k) if e is None else e
        out = []
        for d in range(len(shape)):
            inner = numel(shape[d + 1:])
            v = arith.DivUIOp(e, splat(cidx(inner), k)).result if inner != 1 else e
            if d > 0:
                v = arith.RemUIOp(v, splat(cidx(shape[d]), k)).result
            out.append(v)
        return out

    def _split_unravel(self, shape, k):
        """The owned elements' per-dim indices as splat(thread part) + (slot constants) when the thread's
        and the slot's parts of the flat index never carry into each other (checked for every thread and
        slot), or None. Runs whose rows are whole tiles then share one column index (and its bounds test)."""
        key = (tuple(shape), k)
        if key in self._split:
            return self._split[key]
        v = self.vector_width(k)
        t = np.arange(self.T, dtype=np.int64)[:, None] * v
        c = np.array([(j // v) * self.T * v + j % v for j in range(k)], dtype=np.int64)[None, :]
        parts = []
        for d in range(len(shape)):
            inner = numel(shape[d + 1:])
            whole, tp, cp = (t + c) // inner, t // inner, c // inner
            if d > 0:
                whole, tp, cp = whole % shape[d], tp % shape[d], cp % shape[d]
            if not np.array_equal(whole, tp + cp):
                self._split[key] = None
                return None
            parts.append(cp[0].tolist())
        out = []
        with ir.InsertionPoint(self.anchor), self.anchor.location:
            first = arith.MulIOp(self.tid, cidx(v)).result if v > 1 else self.tid
            for d, consts in enumerate(parts):
                inner = numel(shape[d + 1:])
                x = arith.DivUIOp(first, cidx(inner)).result if inner != 1 else first
                if d > 0:
                    x = arith.RemUIOp(x, cidx(shape[d])).result
                x = splat(x, k)
                out.append(arith.AddIOp(x, vconst(consts, index_t())).result if any(consts) else x)
        self._split[key] = out
        return out


def ravel(idx, shape, k):
    """Flat row-major offsets from per-dim index vectors."""
    off = None
    for d, v in enumerate(idx):
        inner = numel(shape[d + 1:])
        term = arith.MulIOp(v, splat(cidx(inner), k)).result if inner != 1 else v
        off = term if off is None else arith.AddIOp(off, term).result
    return off if off is not None else splat(cidx(0), k)


def and_masks(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return arith.AndIOp(a, b).result


def full_mask(k):
    return vsplat_const(1, ir.IntegerType.get_signless(1), k)


def gather(flat, offsets, mask, passthru, k, elem):
    if k > MAX_RUN_SLOTS and mask is not None:
        return _gather_lanes(flat, offsets, mask, passthru, k, elem)
    vt = ir.VectorType.get([k], elem)
    return vector.GatherOp(vt, flat, [cidx(0)], offsets, mask if mask is not None else full_mask(k), passthru).result


def scatter(flat, offsets, mask, value, k):
    if k > MAX_RUN_SLOTS and mask is not None:
        _scatter_lanes(flat, offsets, mask, value, k)
        return
    vector.ScatterOp(None, flat, [cidx(0)], offsets, mask if mask is not None else full_mask(k), value)


# Masked accesses of large (thread-cyclic) fragments go lane by lane. LLVM scalarises a masked
# gather/scatter into a block per lane with the whole vector live (and, for a gather, merged) across all
# of them: NVPTX's instruction selection and register coalescing cost k per block, k² in all, and ptxas'
# register allocation grows faster still with the blocks; a 65,536-element tile (512 slots) took minutes
# (issue 16). Lanes of 16, 32 or 64 bits are predicated accesses, as runs are: no branch, each lane's
# operands taken out next to its access (as LLVM's scalarisation orders them, so register pressure is
# as it was). Other lanes (i1, 8-bit) branch, on operands all taken out of the vectors before the first
# branch, so that only scalars cross the blocks. Unmasked accesses stay gathers and scatters: LLVM
# scalarises those without a branch.
def _lane(v, i):
    return vector.ExtractOp(v, [], [i]).result


def _gather_lanes(flat, offsets, mask, passthru, k, elem):
    vt = ir.VectorType.get([k], elem)
    if predicated.lane_applies(elem):
        return vector.FromElementsOp(vt, [predicated.load_lane(flat, _lane(offsets, i), _lane(mask, i),
                                                               _lane(passthru, i)) for i in range(k)]).result
    lanes = [(_lane(offsets, i), _lane(mask, i), _lane(passthru, i)) for i in range(k)]
    xs = []
    for at, bit, other in lanes:
        one = scf.IfOp(bit, [elem], has_else=True)
        with ir.InsertionPoint(one.then_block):
            scf.YieldOp([load_scalar(flat, [at], elem)])
        with ir.InsertionPoint(one.else_block):
            scf.YieldOp([other])
        xs.append(one.results[0])
    return vector.FromElementsOp(vt, xs).result


def _scatter_lanes(flat, offsets, mask, value, k):
    if predicated.lane_applies(ir.VectorType(value.type).element_type):
        for i in range(k):
            predicated.store_lane(flat, _lane(offsets, i), _lane(mask, i), _lane(value, i))
        return
    lanes = [(_lane(offsets, i), _lane(value, i), _lane(mask, i)) for i in range(k)]
    for at, x, bit in lanes:
        one = scf.IfOp(bit, [], has_else=False)
        with ir.InsertionPoint(one.then_block):
            store_scalar(x, flat, [at])
            scf.YieldOp([])


def _is_bool(t) -> bool:
    return isinstance(t, ir.IntegerType) and t.width == 1


def load_scalar(base, idx, elem):
    """One element. Booleans go as a one-lane gather: memref-to-llvm aborts on an i1 memref.load, while
    gathers lower per element to byte accesses (NumPy's bool)."""
    if not _is_bool(elem):
        return memref.LoadOp(base, idx).result
    zero = vector.BroadcastOp(ir.VectorType.get([1], ir.IndexType.get()), cidx(0)).result
    none = vsplat_const(0, elem, 1)
    return vector.ExtractOp(vector.GatherOp(ir.VectorType.get([1], elem), base, idx, zero, full_mask(1), none).result,
                            [], [0]).result


def store_scalar(value, base, idx):
    if not _is_bool(value.type):
        memref.StoreOp(value, base, idx)
        return
    zero = vector.BroadcastOp(ir.VectorType.get([1], ir.IndexType.get()), cidx(0)).result
    vector.ScatterOp(None, base, idx, zero, full_mask(1), vector.BroadcastOp(ir.VectorType.get([1], value.type), value).result)


def copy_tile_out(tid, threads, sflat, pitch, rows, cols, elem, base, r0, c0, aligned):
    """A rows × cols tile stored row-major in shared memory (rows `pitch` elements apart) → the global
    tensor `base` at (r0, c0), in 16-byte chunks: thread t copies chunks t, t + T, ... A warp reads and
    writes 512 contiguous bytes of a row (`ld.shared.v4` + `st.global.v4`) when the tensor is of the
    aligned stride class and the chunk is in bounds and aligned; otherwise element by element with
    bounds. `cols` must be a multiple of the chunk (16 bytes)."""
    esize = elem_bytes(elem)
    c = 16 // esize
    per_row = cols // c
    flat, off0, sizes, strides = flat_global(base)
    vt = ir.VectorType.get([c], elem)
    loop = scf.ForOp(tid, cidx(rows * per_row), cidx(threads))
    with ir.InsertionPoint(loop.body):
        q = loop.induction_variable
        row = arith.DivUIOp(q, cidx(per_row)).result
        col = arith.MulIOp(arith.RemUIOp(q, cidx(per_row)).result, cidx(c)).result
        gr = arith.AddIOp(r0, row).result
        gc = arith.AddIOp(c0, col).result
        src = arith.AddIOp(arith.MulIOp(row, cidx(pitch)).result, col).result
        at = arith.AddIOp(arith.AddIOp(off0, arith.MulIOp(gr, strides[0]).result).result,
                          arith.MulIOp(gc, strides[1]).result).result
        row_in = arith.CmpIOp(arith.CmpIPredicate.ult, gr, sizes[0]).result
        slow_block = None
        if aligned:
            whole = arith.CmpIOp(arith.CmpIPredicate.ule, arith.AddIOp(gc, cidx(c)).result, sizes[1]).result
            fast = arith.AndIOp(row_in, whole).result
            fast = arith.AndIOp(fast, arith.CmpIOp(arith.CmpIPredicate.eq, arith.RemUIOp(at, cidx(c)).result,
                                                   cidx(0)).result).result
            br = scf.IfOp(fast, [], has_else=True)
            with ir.InsertionPoint(br.then_block):
                vector.StoreOp(vector.LoadOp(vt, sflat, [src], alignment=16).result, flat, [at], alignment=16)
                scf.YieldOp([])
            slow_block = br.else_block
        with ir.InsertionPoint(slow_block) if slow_block is not None else contextlib.nullcontext():
            for i in range(c):
                ci = cidx(i)
                ok = arith.AndIOp(row_in, arith.CmpIOp(arith.CmpIPredicate.ult, arith.AddIOp(gc, ci).result,
                                                       sizes[1]).result).result
                one = scf.IfOp(ok, [], has_else=False)
                with ir.InsertionPoint(one.then_block):
                    x = memref.LoadOp(sflat, [arith.AddIOp(src, ci).result]).result
                    memref.StoreOp(x, flat, [arith.AddIOp(at, arith.MulIOp(ci, strides[1]).result).result])
                    scf.YieldOp([])
            if slow_block is not None:
                scf.YieldOp([])
        scf.YieldOp([])


def flat_global(m, big=1 << 40):
    """A 1-D memref over the whole allocation of a strided memref, plus its element offset,
    sizes and strides (index values)."""
    mt = ir.MemRefType(m.type)
    r = mt.rank
    md = memref.ExtractStridedMetadataOp(m)
    base, off = md.results[0], md.results[1]
    sizes = list(md.results)[2:2 + r]
    strides = list(md.results)[2 + r:]
    dyn = ir.ShapedType.get_dynamic_size()
    flat_t = ir.MemRefType.get([dyn], mt.element_type, memory_space=mt.memory_space)
    flat = memref.ReinterpretCastOp(flat_t, base, [], [cidx(big)], [], ir.DenseI64ArrayAttr.get([0]),
                                    ir.DenseI64ArrayAttr.get([dyn]), ir.DenseI64ArrayAttr.get([1])).result
    return flat, off, sizes, strides


def known_divisor(v, depth=8) -> int:
    """A number that divides the index value `v` whatever the kernel's arguments (1 when nothing is
    known): constants, products, sums and the induction variables of scf.for loops are followed."""
    if depth == 0:
        return 1
    owner = v.owner
    if isinstance(owner, ir.Block):
        parent = owner.owner
        if parent is not None and parent.name == "scf.for" and v == owner.arguments[0]:
            lb, _, step = list(parent.operands)[:3]
            return math.gcd(known_divisor(lb, depth - 1), known_divisor(step, depth - 1))
        return 1
    op = owner.operation
    if op.name == "arith.constant":
        try:
            c = abs(ir.IntegerAttr(op.attributes["value"]).value)
        except (ValueError, TypeError):
            return 1
        return c if c else 1 << 30
    if op.name == "arith.muli":
        return known_divisor(op.operands[0], depth - 1) * known_divisor(op.operands[1], depth - 1)
    if op.name in ("arith.addi", "arith.subi"):
        return math.gcd(known_divisor(op.operands[0], depth - 1), known_divisor(op.operands[1], depth - 1))
    return 1
