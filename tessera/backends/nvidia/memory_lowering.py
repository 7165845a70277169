"""The memory half of `tessera-lower-tile-to-gpu` (a mixin of its `_Kernel`): global windows (bounds,
blocked runs and 16-byte vector accesses, the aligned stride class), scalar loads and stores, shared
buffers (with padded rows when a tensor-core mma reads them), tile.cp_async, and the loads a
tensor-core mma copies or reads in place itself (`_staged_by_mma`). See that pass's docstring."""
from __future__ import annotations

from mlir import ir
from mlir.dialects import arith, gpu, memref, nvvm, scf

from ...ir import builders as tb
from . import cp_async, fragments as F, runs, mma_pipeline, mma_sync, wgmma_tile
from .common import align, arg_number, elem_bytes


class MemoryLowering:
    def _global_args_read(self):
        """Argument numbers of the global tensors the kernel loads from (tile.load, cp.async sources);
        also records those it stores to (`written_args`)."""
        found, self.written_args = set(), set()

        def visit(op):
            if op.name in ("tile.load", "tile.cp_async", "tile.store"):
                src = op.operands[0 if op.name != "tile.cp_async" else 1]
                if tb.is_window(src.type):
                    n = arg_number(src.owner.operands[0])
                    if n is not None:
                        (self.written_args if op.name == "tile.store" else found).add(n)
            return ir.WalkResult.ADVANCE
        self.f.walk(visit)
        return found

    def _staged_by_mma(self, op):
        """Whether this tile.load only feeds a tensor-core tile.mma that reads it without a trip through
        registers: cp.async from a 2-D window of a tensor the kernel never writes, or ldmatrix in place
        from a 2-D shared buffer nothing writes between the load and the mma; the mma must take the
        warp-tiled path."""
        src, mask, other = tb.operands(op)
        uses = list(op.results[0].uses)
        if mask is not None or other is not None or len(uses) != 1 or uses[0].owner.name != "tile.mma":
            return False
        mma = uses[0].owner
        if uses[0].operand_number > 1:
            return False
        if tb.is_window(src.type):
            if arg_number(src.owner.operands[0]) in self.written_args:
                return False
            shape, _ = tb.window_shape_elem(src.type)
        else:
            shape = list(ir.RankedTensorType(op.results[0].type).shape)
            if self.shared_pitch(src) is None or mma.operation.block != op.operation.block:
                return False
            names, inside = [], False
            for o in op.operation.block.operations:
                if o.operation == mma.operation:
                    break
                if inside:
                    names.append(o.operation.name)
                inside |= o.operation == op.operation
            if any(n in ("tile.store", "tile.cp_async", "scf.for", "scf.if", "scf.while") for n in names):
                return False
        ta, tb_ = [ir.RankedTensorType(ir.TypeAttr(t).value)
                   for t in list(ir.ArrayAttr(mma.attributes["tessera.operand_types"]))[:2]]
        (m, kk), (_, n) = list(ta.shape), list(tb_.shape)
        return len(shape) == 2 and mma_sync.applies(ta.element_type, tb_.element_type, m, n, kk) \
            and mma_sync.warp_tiled(self, m, n) and not wgmma_tile.applies(
                self.arch, self.T, self.warp_specialize, ta.element_type, tb_.element_type, m, n, kk)


    def op_alloc_shared(self, op):
        mt = ir.MemRefType(op.results[0].type)
        shape = list(mt.shape)
        pitch = self._choose_pitch(op, shape, mt.element_type)
        n = F.numel(shape) if pitch is None else shape[0] * pitch
        size = n * elem_bytes(mt.element_type)
        off = align(self.smem_top)
        self.smem_top = off + size
        self.allocs.append((size, op.location))
        view = self.smem_view(off, n, mt.element_type)
        if len(shape) == 2:
            self.pitched.append((view, shape[1], pitch or shape[1]))
        self._replace(op, view)

    def _choose_pitch(self, op, shape, et):
        """Rows 16 bytes longer for a 2-D 16-bit buffer with whole 16-byte chunks per row that a tensor-core
        mma reads (ldmatrix then touches 8 distinct bank groups), when every access to it is a whole-buffer
        tile.load / tile.store / tile.cp_async (which all honour the pitch); None otherwise."""
        if len(shape) != 2 or elem_bytes(et) != 2 or shape[1] % 8:
            return None
        feeds_mma = False
        for use in op.results[0].uses:
            user = use.owner
            if user.name == "tile.load":
                if list(ir.RankedTensorType(user.results[0].type).shape) != shape:
                    return None
                feeds_mma |= any(u.owner.name == "tile.mma" for u in user.results[0].uses)
            elif user.name == "tile.cp_async":
                if list(tb.window_shape_elem(user.operands[1].type)[0]) != shape:
                    return None
            elif user.name != "tile.store":
                return None
        return shape[1] + 8 if feeds_mma else None

    def _row_pitch(self, buf):
        """row_pitch for Layout.to_shared / from_shared: (cols, pitch) of a padded buffer, else None."""
        p = self.shared_pitch(buf)
        return p if p is not None and p[0] != p[1] else None

    def shared_pitch(self, buf):
        """(cols, pitch) of a 2-D shared buffer (pitch = cols unless padded), or None."""
        for view, cols, pitch in self.pitched:
            if view == buf:
                return cols, pitch
        return None


    # window addressing ----------------------------------------------------------------------
    def _runs_ok(self, wv, shape):
        """Whether loads / stores of this window go by runs (vector accesses where a run is aligned and in
        bounds): the kernel is specialised on the tensor being unit-stride with 16-byte aligned base and
        row strides (the `tessera.tma_ok` stride class), and the fragment's runs stay within rows of the
        tile (its last dim a multiple of the run length)."""
        k = self.layout.frag_len(shape)
        v = self.layout.vector_width(k)
        _, et = tb.window_shape_elem(wv.type)
        if v == 1 or not shape or shape[-1] % v or str(et) == "i1":
            return False
        if bool(list(ir.DenseI64ArrayAttr(wv.owner.attributes["squeeze"]))[-1]):
            return False        # the window's last dim is not the tensor's: its runs are strided
        return arg_number(wv.owner.operands[0]) in self.aligned_args

    def _window(self, wv, shape):
        """(flat memref, offsets vector, in-bounds mask, RunGeometry) for the owned elements of a window.
        A tensor of the aligned stride class has unit inner stride and offset 0 (the launchers pass the
        data pointer itself), so neither is read from the descriptor."""
        vop = wv.owner
        base = vop.operands[0]
        offsets = list(vop.operands)[1:]
        squeeze = [bool(x) for x in ir.DenseI64ArrayAttr(vop.attributes["squeeze"])]
        k = self.layout.frag_len(shape)
        flat, off0, sizes, strides = F.flat_global(base)
        aligned = arg_number(base) in self.aligned_args
        if aligned:
            off0, strides = F.cidx(0), list(strides[:-1]) + [F.cidx(1)]
        lane_idx = iter(self.layout.unravel(shape)) if shape else iter(())
        lin, mask, idx = F.splat(off0, k), None, []
        for d, o in enumerate(offsets):
            i = F.splat(o, k)
            if not squeeze[d]:
                i = arith.AddIOp(i, next(lane_idx)).result
            idx.append(i)
            inb = arith.CmpIOp(arith.CmpIPredicate.ult, i, F.splat(sizes[d], k)).result
            mask = F.and_masks(mask, inb)
            term = i if aligned and d == len(offsets) - 1 else arith.MulIOp(i, F.splat(strides[d], k)).result
            lin = arith.AddIOp(lin, term).result
        valid = self.layout.valid(shape)
        v = self.layout.vector_width(k)
        inside, extent = None, iter(shape)
        for d, o in enumerate(offsets):
            end = arith.AddIOp(o, F.cidx(1 if squeeze[d] else next(extent))).result
            ok = arith.CmpIOp(arith.CmpIPredicate.ule, end, sizes[d]).result
            inside = ok if inside is None else arith.AndIOp(inside, ok).result
        known = aligned and bool(offsets) and F.known_divisor(offsets[-1]) % v == 0
        _, et = tb.window_shape_elem(wv.type)
        # the last dim a whole number of 16-byte chunks, a run at most one chunk, starting on a multiple of
        # v: every run is wholly inside the tensor or wholly outside it
        whole = known and arg_number(base) in self.whole_chunk_args and 16 % (v * elem_bytes(et)) == 0
        geom = runs.RunGeometry(idx, sizes, self.layout.lanes(k), F.numel(shape) if valid is not None else None,
                             known, inside, whole_runs=whole)
        return flat, lin, F.and_masks(mask, valid), geom

    def _scalar_window(self, wv):
        vop = wv.owner
        base = vop.operands[0]
        idx = list(vop.operands)[1:]
        inb = None
        for d, i in enumerate(idx):
            c = arith.CmpIOp(arith.CmpIPredicate.ult, i, memref.DimOp(base, F.cidx(d)).result).result
            inb = c if inb is None else arith.AndIOp(inb, c).result
        return base, idx, inb

    def op_load(self, op):
        src, mask, other = tb.operands(op)
        rt = op.results[0].type
        if self._staged_by_mma(op):
            return                       # op_mma copies the window (or reads the buffer) and erases the load
        if not tb.is_window(src.type):  # a shared buffer read as a tile
            gpu.BarrierOp()
            shape = list(ir.RankedTensorType(rt).shape)
            k = self.layout.frag_len(shape)
            et = ir.RankedTensorType(rt).element_type
            new = self.layout.from_shared(src, shape, F.vsplat_const(0, et, k), k, et, self._row_pitch(src))
            self._replace(op, new)
            return
        shape, et = tb.window_shape_elem(src.type)
        if not shape:
            base, idx, inb = self._scalar_window(src)
            if mask is not None:
                inb = arith.AndIOp(inb, mask).result
            ifop = scf.IfOp(inb, [et], has_else=True)
            with ir.InsertionPoint(ifop.then_block):
                scf.YieldOp([F.load_scalar(base, idx, et)])
            with ir.InsertionPoint(ifop.else_block):
                scf.YieldOp([other if other is not None else F.cidx(0) if isinstance(et, ir.IndexType) else
                             arith.ConstantOp(et, F._scalar_attr(0, et)).result])
            self._replace(op, ifop.results[0])
            return
        k = self.layout.frag_len(shape)
        flat, lin, m, geom = self._window(src, list(shape))
        geom = geom if mask is None else None
        m = F.and_masks(m, mask)
        if other is None:
            passthru = F.vsplat_const(0, et, k)
        elif isinstance(other.type, ir.VectorType):
            passthru = other
        else:
            passthru = F.splat(other, k)
        if self._runs_ok(src, list(shape)):
            self._replace(op, runs.load_runs(flat, lin, m, passthru, k, et, self.layout.vector_width(k), geom))
        else:
            self._replace(op, F.gather(flat, lin, m, passthru, k, et))

    def op_store(self, op):
        dst, value, mask = tb.operands(op)
        if "tessera.layout" in op.attributes:   # a tile in the mma layout, stored from registers
            shape, _ = tb.window_shape_elem(dst.type)
            grid = [ir.IntegerAttr(x).value for x in ir.ArrayAttr(op.attributes["tessera.mma_grid"])]
            mma_pipeline.store_from_registers(self, op, value, list(shape), grid)
            op.erase()
            return
        if not tb.is_window(dst.type):
            shape = [F.numel(list(ir.MemRefType(dst.type).shape))]
            k = self.layout.frag_len(shape)
            gpu.BarrierOp()
            self.layout.to_shared(dst, shape, value, k, self._row_pitch(dst), mask)
            gpu.BarrierOp()
            op.erase()
            return
        shape, et = tb.window_shape_elem(dst.type)
        if not shape:
            base, idx, inb = self._scalar_window(dst)
            first = arith.CmpIOp(arith.CmpIPredicate.eq, self.tid, F.cidx(0)).result
            cond = arith.AndIOp(inb, first).result
            if mask is not None:
                cond = arith.AndIOp(cond, mask).result
            ifop = scf.IfOp(cond, [], has_else=False)
            with ir.InsertionPoint(ifop.then_block):
                F.store_scalar(value, base, idx)
                scf.YieldOp([])
            self._publish_store(dst)
            op.erase()
            return
        k = self.layout.frag_len(shape)
        if self._store_through_shared(dst, list(shape), et, k, mask, value):
            self._publish_store(dst)
            op.erase()
            return
        flat, lin, m, geom = self._window(dst, list(shape))
        if self._runs_ok(dst, list(shape)):
            runs.store_runs(flat, lin, F.and_masks(m, mask), value, k, self.layout.vector_width(k),
                         geom if mask is None else None)
        else:
            F.scatter(flat, lin, F.and_masks(m, mask), value, k)
        self._publish_store(dst)
        op.erase()

    def _store_through_shared(self, dst, shape, et, k, mask, value):
        """A large thread-cyclic tile (GEMM outputs) stored unmasked to a 2-D window of an aligned tensor:
        through shared memory (conflict-free scatter, then 16-byte chunks per thread, `copy_tile_out`)
        instead of one scalar store per element. False when it does not apply."""
        vop = dst.owner
        if mask is not None or F.vector_width(k) != 1 or k <= F.MAX_RUN_SLOTS or len(shape) != 2 \
                or any(bool(x) for x in ir.DenseI64ArrayAttr(vop.attributes["squeeze"])) \
                or str(et) == "i1" or shape[1] % (16 // elem_bytes(et)) \
                or arg_number(vop.operands[0]) not in self.aligned_args:
            return False
        base, r0, c0 = list(vop.operands)
        buf = self._to_scratch(value, shape, et)
        F.copy_tile_out(self.tid, self.T, buf, shape[1], shape[0], shape[1], et, base, r0, c0, True)
        gpu.BarrierOp()
        return True

    def op_cp_async(self, op):
        dst, src = list(op.operands)
        shape, et = tb.window_shape_elem(src.type)
        squeeze_last = bool(list(ir.DenseI64ArrayAttr(src.owner.attributes["squeeze"]))[-1])
        if cp_async.applies(list(shape), elem_bytes(et)) and not squeeze_last:
            bypass = bool(ir.BoolAttr(op.attributes["bypass_l1"]).value) if "bypass_l1" in op.attributes else False
            cp_async.lower(self, dst, src.owner, list(shape), et, elem_bytes(et), bypass, self._row_pitch(dst))
            op.erase()
            return
        shape = list(shape) or [1]
        k = self.layout.frag_len(shape)
        flat, lin, m, _ = self._window(src, list(tb.window_shape_elem(src.type)[0]))
        v = F.gather(flat, lin, m, F.vsplat_const(0, et, k), k, et)
        self.layout.to_shared(dst, shape, v, k, self._row_pitch(dst))
        op.erase()

    def op_cp_commit_group(self, op):
        nvvm.CpAsyncCommitGroupOp()
        op.erase()

    def op_cp_wait_group(self, op):
        nvvm.CpAsyncWaitGroupOp(ir.IntegerAttr(op.attributes["pending"]).value)
        op.erase()
