"""Vector accesses by runs: a fragment's owned elements (see fragments.py) loaded and stored as runs of
contiguous slots, by 16-byte vector accesses where a run is in bounds and aligned (tensors of the aligned
stride class, or `RunGeometry` bounds that hold per run), else slot by slot under the slots' masks."""
from __future__ import annotations

from mlir import ir
from mlir.dialects import arith, memref, scf, vector

from . import predicated
from .common import elem_bytes
from .fragments import cidx, gather, scatter


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
