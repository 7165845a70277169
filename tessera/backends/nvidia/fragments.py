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
        at, v = self.shared_offsets(k, row_pitch)
        store_runs(buf, at, and_masks(self.valid(shape), mask), value, k, v)

    def from_shared(self, buf, shape, passthru, k, elem, row_pitch=None):
        """The fragment of a tile stored in a flat shared buffer as to_shared stores it (vector loads per run)."""
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
    vt = ir.VectorType.get([k], elem)
    return vector.GatherOp(vt, flat, [cidx(0)], offsets, mask if mask is not None else full_mask(k), passthru).result


def scatter(flat, offsets, mask, value, k):
    vector.ScatterOp(None, flat, [cidx(0)], offsets, mask if mask is not None else full_mask(k), value)


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


def _slice(v, start, size):
    """Elements start..start+size-1 of a 1-D vector (a shufflevector: NVVM has no strided-slice lowering)."""
    return vector.ShuffleOp(v, v, list(range(start, start + size))).result


def _insert(part, into, start):
    """`into` with elements start.. replaced by `part`."""
    k, v = ir.VectorType(into.type).shape[0], ir.VectorType(part.type).shape[0]
    # shuffle indices: 0..k-1 pick from `into`, k..k+v-1 from `part`
    return vector.ShuffleOp(into, part, [k + i - start if start <= i < start + v else i for i in range(k)]).result


def _runs(k, v, mask, lin):
    """Per run of v slots: (start, offset of its first element, the slots' scalar masks (None: all in
    bounds), and whether the run can go by vector accesses: every slot in bounds and the first element's
    offset a multiple of v, which on a tensor of the aligned stride class (16-byte aligned base and row
    strides, unit inner stride) aligns each 16-byte piece of the run). Masks are taken apart as
    scalars: NVPTX legalises shuffles of i1 vectors through local memory."""
    for c in range(0, k, v):
        off = vector.ExtractOp(lin, [], [c]).result
        bits = None if mask is None else [vector.ExtractOp(mask, [], [c + i]).result for i in range(v)]
        fast = arith.CmpIOp(arith.CmpIPredicate.eq, arith.RemUIOp(off, cidx(v)).result, cidx(0)).result
        for bit in bits or ():
            fast = arith.AndIOp(fast, bit).result
        yield c, off, bits, fast


class RunGeometry:
    """What decides, per run of v contiguous elements along a window's last dim (unit stride), whether
    the whole run is in bounds, from its first element alone: the per-dim index vectors (`idx`, vectors
    of k), the window's `sizes`, the tile's padding (`n`: elements that exist, None if every slot does),
    the flat index vector `lanes`, and whether the first element's offset is known to be a multiple of v
    (`aligned`; else tested). The per-slot tests of a ragged run are made inside its slow branch, from
    the same first element (slot i is at offset + i), so the fast path carries none of them."""

    def __init__(self, idx, sizes, lanes, n, aligned, inside=None, whole_runs=False):
        self.idx, self.sizes, self.lanes, self.n, self.aligned = idx, sizes, lanes, n, aligned
        # whole_runs: every run is wholly in or wholly out of bounds (the kernel is specialised on the last
        # dim holding whole 16-byte chunks): one predicate per run and no element-by-element path, so no
        # whole-window path either (as Triton's predicated vector accesses)
        self.whole_runs = whole_runs
        self.inside = inside if aligned and n is None and not whole_runs else None   # i1: the window is in bounds

    def first(self, c):
        """(i1 or None: the outer dims in bounds, last-dim index, flat lane index or None) of slot c."""
        rows_ok = None
        for iv, size in zip(self.idx[:-1], self.sizes[:-1]):
            cmp = arith.CmpIOp(arith.CmpIPredicate.ult, vector.ExtractOp(iv, [], [c]).result, size).result
            rows_ok = cmp if rows_ok is None else arith.AndIOp(rows_ok, cmp).result
        col = vector.ExtractOp(self.idx[-1], [], [c]).result
        e = vector.ExtractOp(self.lanes, [], [c]).result if self.n is not None else None
        return rows_ok, col, e

    def _in_bounds(self, first, j):
        """i1: element j of the run (column col + j, lane e + j) exists in the tensor and the tile."""
        rows_ok, col, e = first
        ok = arith.CmpIOp(arith.CmpIPredicate.ult, arith.AddIOp(col, cidx(j)).result if j else col,
                          self.sizes[-1]).result
        if rows_ok is not None:
            ok = arith.AndIOp(rows_ok, ok).result
        if e is not None:
            ok = arith.AndIOp(ok, arith.CmpIOp(arith.CmpIPredicate.ult, arith.AddIOp(e, cidx(j)).result if j else e,
                                               cidx(self.n)).result).result
        return ok

    def fast(self, first, v, off):
        """The run goes by vector accesses: its last element exists (its first, for whole runs) and, unless
        known, its offset is a multiple of v."""
        ok = self._in_bounds(first, 0 if self.whole_runs else v - 1)
        if not self.aligned:
            ok = arith.AndIOp(ok, arith.CmpIOp(arith.CmpIPredicate.eq, arith.RemUIOp(off, cidx(v)).result,
                                               cidx(0)).result).result
        return ok

    def slot_bits(self, first, v):
        return [self._in_bounds(first, i) for i in range(v)]


def _geometry_runs(k, v, lin, geometry):
    """(start, first offset, fast predicate, a function making the slot masks and offsets inside the slow
    branch) per run, from each run's first element (see RunGeometry)."""
    for c in range(0, k, v):
        off = vector.ExtractOp(lin, [], [c]).result
        first = geometry.first(c)

        def slow(first=first, off=off):
            if geometry.whole_runs:
                return None                    # the run is wholly out of bounds: nothing to access
            return geometry.slot_bits(first, v), [arith.AddIOp(off, cidx(i)).result if i else off for i in range(v)]
        yield c, off, geometry.fast(first, v, off), slow


def _pieces(v, esize):
    """A run of v elements as vector accesses of at most 16 bytes: (first element, length) pairs."""
    n = max(1, min(v, 16 // esize))
    return [(i, n) for i in range(0, v, n)]


def _predicated(geometry, v, elem) -> bool:
    """Runs of v elements go by predicated vector accesses: each is wholly in or out of bounds (the
    whole-chunk specialisation) and its pieces are whole 32-bit words."""
    return geometry is not None and geometry.whole_runs and all(predicated.applies(n, elem)
                                                                for _, n in _pieces(v, elem_bytes(elem)))


def _any(bits):
    some = bits[0]
    for b in bits[1:]:
        some = arith.OrIOp(some, b).result
    return some


def _at(lin, c, i):
    """Offset of slot c + i: from the offsets vector, or the run's list of scalar offsets."""
    return lin[i] if isinstance(lin, list) else vector.ExtractOp(lin, [], [c + i]).result


def _load_each(flat, lin, c, v, bits, run, elem):
    """Slots c..c+v-1 loaded one by one (under their masks), into `run`."""
    for i in range(v):
        at = _at(lin, c, i)
        if bits is None:
            x = memref.LoadOp(flat, [at]).result
        else:
            one = scf.IfOp(bits[i], [elem], has_else=True)
            with ir.InsertionPoint(one.then_block):
                scf.YieldOp([memref.LoadOp(flat, [at]).result])
            with ir.InsertionPoint(one.else_block):
                scf.YieldOp([vector.ExtractOp(run, [], [i]).result])
            x = one.results[0]
        run = vector.InsertOp(x, run, [], [i]).result
    return run


def _store_each(flat, lin, c, v, bits, value):
    for i in range(v):
        at = _at(lin, c, i)
        x = vector.ExtractOp(value, [], [c + i]).result
        if bits is None:
            memref.StoreOp(x, flat, [at])
            continue
        one = scf.IfOp(bits[i], [], has_else=False)
        with ir.InsertionPoint(one.then_block):
            memref.StoreOp(x, flat, [at])
            scf.YieldOp([])


def load_runs(flat, lin, mask, passthru, k, elem, v, geometry=None):
    """A masked gather of k slots in runs of v: aligned vector loads (16-byte pieces) where `_runs`
    allows, the run's slots one by one under their masks where it is ragged, nothing where it is wholly
    out of bounds. v = 1 (thread-cyclic fragments) keeps the gather. `geometry` (a RunGeometry, only
    when `mask` is the window's bounds and padding alone) decides each run from its first element."""
    if v == 1:
        return gather(flat, lin, mask, passthru, k, elem)
    esize = elem_bytes(elem)
    if geometry is not None and geometry.inside is not None:
        # the whole window in bounds (one uniform test): every run is one aligned vector access
        whole = scf.IfOp(geometry.inside, [passthru.type], has_else=True)
        with ir.InsertionPoint(whole.then_block):
            out = passthru
            for c in range(0, k, v):
                off = vector.ExtractOp(lin, [], [c]).result
                for i, n in _pieces(v, esize):
                    at = arith.AddIOp(off, cidx(i)).result if i else off
                    out = _insert(vector.LoadOp(ir.VectorType.get([n], elem), flat, [at], alignment=n * esize).result,
                                  out, c + i)
            scf.YieldOp([out])
        with ir.InsertionPoint(whole.else_block):
            geometry.inside, saved = None, geometry.inside
            scf.YieldOp([load_runs(flat, lin, mask, passthru, k, elem, v, geometry)])
            geometry.inside = saved
        return whole.results[0]
    out = passthru
    runs = _geometry_runs(k, v, lin, geometry) if geometry is not None else \
        ((c, off, fast, (lambda bits=bits: (bits, lin))) for c, off, bits, fast in _runs(k, v, mask, lin))
    predicate = _predicated(geometry, v, elem)
    for c, off, fast, slow in runs:
        vt = ir.VectorType.get([v], elem)
        if predicate:      # a run wholly in or out: predicated vector loads, no branch
            run = _slice(passthru, c, v)
            for i, n in _pieces(v, esize):
                at = arith.AddIOp(off, cidx(i)).result if i else off
                piece = predicated.load(flat, at, fast, run if n == v else _slice(run, i, n))
                run = piece if n == v else _insert(piece, run, i)
            out = _insert(run, out, c)
            continue
        br = scf.IfOp(fast, [vt], has_else=True)
        with ir.InsertionPoint(br.then_block):
            run = _slice(passthru, c, v)
            for i, n in _pieces(v, esize):
                at = arith.AddIOp(off, cidx(i)).result if i else off
                piece = vector.LoadOp(ir.VectorType.get([n], elem), flat, [at], alignment=n * esize).result
                run = piece if n == v else _insert(piece, run, i)
            scf.YieldOp([run])
        with ir.InsertionPoint(br.else_block):
            run = _slice(passthru, c, v)
            got = slow()
            bits, offs = got if got is not None else (None, None)
            if got is None:
                scf.YieldOp([run])
            elif bits is None:
                scf.YieldOp([_load_each(flat, offs, c, v, None, run, elem)])
            else:
                part = scf.IfOp(_any(bits), [vt], has_else=True)
                with ir.InsertionPoint(part.then_block):
                    scf.YieldOp([_load_each(flat, offs, c, v, bits, run, elem)])
                with ir.InsertionPoint(part.else_block):
                    scf.YieldOp([run])
                scf.YieldOp([part.results[0]])
        out = _insert(br.results[0], out, c)
    return out


def store_runs(flat, lin, mask, value, k, v, geometry=None):
    """A masked scatter of k slots in runs of v (see load_runs)."""
    if v == 1:
        scatter(flat, lin, mask, value, k)
        return
    esize = elem_bytes(ir.VectorType(value.type).element_type)
    if geometry is not None and geometry.inside is not None:
        whole = scf.IfOp(geometry.inside, [], has_else=True)
        with ir.InsertionPoint(whole.then_block):
            for c in range(0, k, v):
                off = vector.ExtractOp(lin, [], [c]).result
                for i, n in _pieces(v, esize):
                    at = arith.AddIOp(off, cidx(i)).result if i else off
                    vector.StoreOp(_slice(value, c + i, n), flat, [at], alignment=n * esize)
            scf.YieldOp([])
        with ir.InsertionPoint(whole.else_block):
            geometry.inside, saved = None, geometry.inside
            store_runs(flat, lin, mask, value, k, v, geometry)
            geometry.inside = saved
            scf.YieldOp([])
        return
    runs = _geometry_runs(k, v, lin, geometry) if geometry is not None else \
        ((c, off, fast, (lambda bits=bits: (bits, lin))) for c, off, bits, fast in _runs(k, v, mask, lin))
    predicate = _predicated(geometry, v, ir.VectorType(value.type).element_type)
    for c, off, fast, slow in runs:
        if predicate:      # a run wholly in or out: predicated vector stores, no branch
            for i, n in _pieces(v, esize):
                at = arith.AddIOp(off, cidx(i)).result if i else off
                predicated.store(flat, at, fast, _slice(value, c + i, n))
            continue
        br = scf.IfOp(fast, [], has_else=True)
        with ir.InsertionPoint(br.then_block):
            for i, n in _pieces(v, esize):
                at = arith.AddIOp(off, cidx(i)).result if i else off
                vector.StoreOp(_slice(value, c + i, n), flat, [at], alignment=n * esize)
            scf.YieldOp([])
        with ir.InsertionPoint(br.else_block):
            got = slow()
            bits, offs = got if got is not None else (None, None)
            if got is None:
                pass
            elif bits is None:
                _store_each(flat, offs, c, v, None, value)
            else:
                part = scf.IfOp(_any(bits), [], has_else=False)
                with ir.InsertionPoint(part.then_block):
                    _store_each(flat, offs, c, v, bits, value)
                    scf.YieldOp([])
            scf.YieldOp([])


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
