"""tessera-lower-tile-to-gpu{arch=sm_80|sm_90a num_warps=4 num_stages=3}: tile IR → gpu.module/gpu.func (SIMT).

One program becomes one CTA of num_warps·32 threads. Tiles become blocked fragments
(`tessera.backends.nvidia.fragments`): elementwise arith/math on tensors is retyped in place to
vector ops; bounds-checked loads and stores become masked `vector.gather` / `vector.scatter` on a
flat view of the global tensor, or 16-byte vector accesses per aligned in-bounds run on tensors of the
aligned stride class (`tessera.tma_ok`); a store to a tensor the kernel also reads ends with a
barrier (statement order); shared buffers and the scratch area used for data exchange are
carved out of one dynamic shared-memory block (`@__tessera_smem`, 1024-aligned, external — see the
probe's pitfall 2); full reductions go through warp shuffles and shared memory (`backends/nvidia/reductions.py`); axis reductions,
broadcasts, transposes and the generic `tile.mma` exchange elements through shared memory.
Control flow stays scf (scalars are uniform across the CTA, so barriers under `scf.if` are safe).

Assumes the frontend's tile IR (single-block kernels, static tile shapes). Records
`tessera.shared_bytes`, `tessera.num_warps` and `tessera.smem_allocs` (byte size and location of
each shared buffer) on the gpu.func for the resource check; the original func.func is removed.
"""
from __future__ import annotations

from mlir import ir
from mlir.dialects import arith, gpu, memref, nvvm, scf, vector

from ..backends.nvidia import cp_async, fragments as F, mma_pipeline, mma_sync, reductions, wgmma
from ..ir import builders as tb
from ..ir.locations import error_at

name = "tessera-lower-tile-to-gpu"

_ELEMENTWISE = ("arith.", "math.")
_CONTRACTIBLE = ("arith.mulf", "arith.addf", "arith.subf")
SMEM_BASE = "__tessera_smem"
SMEM_VIEW_BYTES = 1 << 20


def _bytes(t):
    if isinstance(t, ir.IntegerType):
        return max(1, t.width // 8)
    return {"f32": 4, "f16": 2, "bf16": 2, "f64": 8}.get(str(t), 1)


def _align(x, a=128):
    return (x + a - 1) // a * a


def _is_tensor(t):
    return isinstance(t, ir.RankedTensorType)


def _run_length(arg_types):
    """Elements per run of the blocked fragments: 16 bytes of the narrowest global element type
    (8 for kernels on 16- or 8-bit tensors, else 4)."""
    sizes = [_bytes(ir.MemRefType(t).element_type) for t in arg_types if isinstance(t, ir.MemRefType)]
    return 8 if sizes and min(sizes) <= 2 else 4


def _arg_number(v):
    """The kernel argument a global tensor value is, or None."""
    if isinstance(v, ir.BlockArgument):
        return v.arg_number
    try:
        return ir.BlockArgument(v).arg_number
    except (ValueError, TypeError):
        return None


class _Kernel:
    def __init__(self, f, gmod, threads, arch="sm_80"):
        self.f, self.gmod, self.T, self.arch = f, gmod, threads, arch
        self.smem_top = 0
        self.scratch_need = 0
        self.allocs = []
        self.scratch_views = []
        self.pitched = []       # (shared buffer view, cols, pitch): 2-D buffers with padded rows

    # -- set-up ------------------------------------------------------------------------------
    def build(self):
        fname = ir.StringAttr(self.f.attributes["sym_name"]).value
        ft = ir.FunctionType(ir.TypeAttr(self.f.attributes["function_type"]).value)
        self.wgmma_loops = []
        self.read_args = self._global_args_read()
        aligned = [bool(ir.BoolAttr(a).value) for a in ir.ArrayAttr(self.f.attributes["tessera.tma_ok"])] \
            if "tessera.tma_ok" in self.f.attributes else []
        self.aligned_args = {i for i, ok in enumerate(aligned) if ok}
        if self.arch == "sm_90a":
            def visit(op):
                if op.name == "scf.for" and "tessera.wgmma" in op.attributes:
                    self.wgmma_loops.append(op)
                return ir.WalkResult.ADVANCE
            self.f.walk(visit)
        inputs = list(ft.inputs) + [ir.Type.parse("!llvm.ptr")] * (2 * len(self.wgmma_loops))
        ft = ir.FunctionType.get(inputs, [])
        with ir.InsertionPoint(self.gmod.regions[0].blocks[0]), self.f.location:
            g = gpu.GPUFuncOp(ir.TypeAttr.get(ft), sym_name=fname, kernel=True, known_block_size=[self.T, 1, 1])
            blk = g.regions[0].blocks.append(*ft.inputs)
            with ir.InsertionPoint(blk):
                ret = gpu.ReturnOp([])
        old = self.f.regions[0].blocks[0]
        for a, b in zip(old.arguments, blk.arguments):
            a.replace_all_uses_with(b)
        for op in list(old.operations):
            if op.name == "func.return":
                op.erase()
                continue
            op.move_before(ret)
        self.g, self.blk = g, blk
        first = blk.operations[0]
        with ir.InsertionPoint(first), self.f.location:
            self.tid = gpu.ThreadIdOp(gpu.Dimension.x).result
            anchor = arith.ConstantOp(ir.IndexType.get(), 0)
            self.layout = F.Layout(self.T, self.tid, anchor.operation, run=_run_length(ft.inputs))
            i8 = ir.IntegerType.get_signless(8)
            space = ir.Attribute.parse("#gpu.address_space<workgroup>")
            g0 = memref.GetGlobalOp(ir.MemRefType.get([0], i8, memory_space=space), SMEM_BASE).result
            big = ir.MemRefType.get([SMEM_VIEW_BYTES], i8, memory_space=space)
            self.smem = memref.ReinterpretCastOp(big, g0, [], [], [], ir.DenseI64ArrayAttr.get([0]),
                                                 ir.DenseI64ArrayAttr.get([SMEM_VIEW_BYTES]),
                                                 ir.DenseI64ArrayAttr.get([1])).result
        return g

    def _global_args_read(self):
        """Argument numbers of the global tensors the kernel loads from (tile.load, cp.async sources);
        also records those it stores to (`written_args`)."""
        found, self.written_args = set(), set()

        def visit(op):
            if op.name in ("tile.load", "tile.cp_async", "tile.store"):
                src = op.operands[0 if op.name != "tile.cp_async" else 1]
                if tb.is_window(src.type):
                    n = _arg_number(src.owner.operands[0])
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
            if _arg_number(src.owner.operands[0]) in self.written_args:
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
            and mma_sync.warp_tiled(self, m, n)

    def _publish_store(self, window):
        """A global store becomes visible to the whole CTA before the program's next statement when the
        kernel also reads that tensor: the store and a later load may be done by different threads (a
        scalar store is thread 0's), and the tile program's statements are sequential (as on the CPU)."""
        if _arg_number(window.owner.operands[0]) in self.read_args:
            gpu.BarrierOp()

    def reserve(self, nbytes: int, align: int = 128, loc=None) -> int:
        """Byte offset of a fixed region of the dynamic shared-memory block."""
        off = _align(self.smem_top, align)
        self.smem_top = off + nbytes
        self.allocs.append((nbytes, loc or self.f.location))
        return off

    def rewrite_wgmma_loops(self, stages):
        args = list(self.blk.arguments)
        descs = args[len(args) - 2 * len(self.wgmma_loops):]
        tma = []
        for k, loop in enumerate(self.wgmma_loops):
            _, _, _, va, vb = wgmma.pattern(loop)
            bm, _ = wgmma.tile_shape(loop)
            for view, box in ((va, (bm, 64)), (vb, (64, 64))):
                tma.append([view.operands[0].arg_number, *box])
            wgmma.rewrite(self, loop, descs[2 * k], descs[2 * k + 1], stages)
        i64 = ir.IntegerType.get_signless(64)
        self.g.attributes["tessera.tma"] = ir.ArrayAttr.get(
            [ir.ArrayAttr.get([ir.IntegerAttr.get(i64, x) for x in t]) for t in tma])

    def rewrite_mma_loops(self, stages):
        """`tessera.mma_pipeline` K loops → cp.async pipelines feeding mma.sync (`mma_pipeline`)."""
        loops = []

        def visit(op):
            if op.name == "scf.for" and "tessera.mma_pipeline" in op.attributes:
                loops.append(op)
            return ir.WalkResult.ADVANCE
        self.g.walk(visit)
        for loop in loops:
            grid = mma_pipeline.plan(self, loop)
            if grid is None:
                del loop.attributes["tessera.mma_pipeline"]
                continue
            mma_pipeline.rewrite(self, loop, stages, grid)

    def smem_elems(self, elem):
        """The whole dynamic shared-memory block as a flat memref of `elem`."""
        return self.smem_view(0, SMEM_VIEW_BYTES // _bytes(elem), elem)

    def smem_view(self, byte_offset: int, n: int, elem):
        space = ir.Attribute.parse("#gpu.address_space<workgroup>")
        t = ir.MemRefType.get([n], elem, memory_space=space)
        return memref.ViewOp(t, self.smem, F.cidx(byte_offset), []).result

    def scratch(self, n, elem):
        """A flat view of the scratch area (placed after all shared buffers once they are known)."""
        self.scratch_need = max(self.scratch_need, n * _bytes(elem))
        v = self.smem_view(0, n, elem)
        self.scratch_views.append(v.owner)
        return v

    # -- the rewrite -------------------------------------------------------------------------------
    def frag_type(self, t):
        tt = ir.RankedTensorType(t)
        return ir.VectorType.get([self.layout.frag_len(list(tt.shape))], tt.element_type)

    def run(self):
        ops = []

        def collect(op):
            if op.operation != self.g.operation:
                ops.append(op)
            if op.name.startswith("linalg."):  # replaced whole, with their bodies
                return ir.WalkResult.SKIP
            return ir.WalkResult.ADVANCE
        self.g.walk(collect, ir.WalkOrder.PRE_ORDER)  # definitions (and loop block args) before uses
        views, empties = [], []
        for op in ops:
            n = op.name
            if n == "tile.view":
                views.append(op)
                continue
            with ir.InsertionPoint(op), op.location:
                if n.startswith("tile."):
                    getattr(self, "op_" + n[5:])(op)
                elif n == "arith.constant" and _is_tensor(op.results[0].type):
                    self.op_dense_constant(op)
                elif n.startswith(_ELEMENTWISE):
                    tile_op = False
                    for r in op.results:
                        if _is_tensor(r.type):
                            r.set_type(self.frag_type(r.type))
                            tile_op = True
                    if tile_op and n in _CONTRACTIBLE and ("fastmath" not in op.attributes or
                                                           str(op.attributes["fastmath"]) == "#arith.fastmath<none>"):
                        # a·b + c may become one fma, as nvcc (-fmad=true) and Triton do by default
                        op.attributes["fastmath"] = ir.Attribute.parse("#arith.fastmath<contract>")
                elif n in ("scf.for", "scf.if"):
                    for r in op.results:
                        if _is_tensor(r.type):
                            r.set_type(self.frag_type(r.type))
                    if n == "scf.for":
                        for a in op.regions[0].blocks[0].arguments:
                            if _is_tensor(a.type):
                                a.set_type(self.frag_type(a.type))
                elif n == "tensor.reshape":
                    op.results[0].replace_all_uses_with(op.operands[0])
                    op.erase()
                elif n == "linalg.transpose":
                    self.op_transpose(op)
                elif n == "tensor.empty":
                    empties.append(op)
                elif any(_is_tensor(r.type) for r in op.results):
                    raise error_at(op.location, f"'{n}' on tiles has no GPU lowering yet")
        for v in reversed(views):
            v.erase()
        for op in empties:
            op.erase()

    def _replace(self, op, new):
        op.results[0].replace_all_uses_with(new)
        op.erase()

    def op_dense_constant(self, op):
        tt = ir.RankedTensorType(op.results[0].type)
        attr = ir.DenseElementsAttr(op.attributes["value"])
        if not attr.is_splat:
            # only the shape operands of tensor.reshape are non-splat; they die with the reshape
            if any(u.owner.name != "tensor.reshape" for u in op.results[0].uses):
                raise error_at(op.location, "this tile constant is not supported by the GPU lowering yet")
            return
        vt = self.frag_type(tt)
        new = arith.ConstantOp(vt, ir.DenseElementsAttr.get_splat(vt, attr.get_splat_value())).result
        self._replace(op, new)

    def op_program_id(self, op):
        axis = ir.IntegerAttr(op.attributes["axis"]).value
        self._replace(op, gpu.BlockIdOp([gpu.Dimension.x, gpu.Dimension.y, gpu.Dimension.z][axis]).result)

    def op_num_programs(self, op):
        axis = ir.IntegerAttr(op.attributes["axis"]).value
        self._replace(op, gpu.GridDimOp([gpu.Dimension.x, gpu.Dimension.y, gpu.Dimension.z][axis]).result)

    def op_alloc_shared(self, op):
        mt = ir.MemRefType(op.results[0].type)
        shape = list(mt.shape)
        pitch = self._choose_pitch(op, shape, mt.element_type)
        n = F.numel(shape) if pitch is None else shape[0] * pitch
        size = n * _bytes(mt.element_type)
        off = _align(self.smem_top)
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
        if len(shape) != 2 or _bytes(et) != 2 or shape[1] % 8:
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
        return _arg_number(wv.owner.operands[0]) in self.aligned_args

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
        aligned = _arg_number(base) in self.aligned_args
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
        geom = F.RunGeometry(idx, sizes, self.layout.lanes(k), F.numel(shape) if valid is not None else None,
                             aligned and bool(offsets) and F.known_divisor(offsets[-1]) % v == 0, inside)
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
                scf.YieldOp([memref.LoadOp(base, idx).result])
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
            self._replace(op, F.load_runs(flat, lin, m, passthru, k, et, self.layout.vector_width(k), geom))
        else:
            self._replace(op, F.gather(flat, lin, m, passthru, k, et))

    def op_store(self, op):
        dst, value, mask = tb.operands(op)
        if not tb.is_window(dst.type):
            shape = [F.numel(list(ir.MemRefType(dst.type).shape))]
            k = self.layout.frag_len(shape)
            gpu.BarrierOp()
            self.layout.to_shared(dst, shape, value, k, self._row_pitch(dst))
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
                memref.StoreOp(value, base, idx)
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
            F.store_runs(flat, lin, F.and_masks(m, mask), value, k, self.layout.vector_width(k),
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
                or str(et) == "i1" or shape[1] % (16 // _bytes(et)) \
                or _arg_number(vop.operands[0]) not in self.aligned_args:
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
        if cp_async.applies(list(shape), _bytes(et)) and not squeeze_last:
            bypass = bool(ir.BoolAttr(op.attributes["bypass_l1"]).value) if "bypass_l1" in op.attributes else False
            cp_async.lower(self, dst, src.owner, list(shape), et, _bytes(et), bypass, self._row_pitch(dst))
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

    def op_barrier(self, op):
        gpu.BarrierOp()
        op.erase()

    # data exchange through shared memory -----------------------------------------------------
    def _to_scratch(self, frag, shape, et):
        n = F.numel(shape)
        k = self.layout.frag_len(shape)
        buf = self.scratch(n, et)
        gpu.BarrierOp()
        self.layout.to_shared(buf, shape, frag, k)
        gpu.BarrierOp()
        return buf

    def op_broadcast(self, op):
        x = op.operands[0]
        rt = ir.RankedTensorType(op.results[0].type)
        shape = list(rt.shape)
        k = self.layout.frag_len(shape)
        if not isinstance(x.type, ir.VectorType):
            if "tessera.operand_types" in op.attributes:
                del op.attributes["tessera.operand_types"]
            self._replace(op, F.splat(x, k))
            return
        xs = list(ir.RankedTensorType(_operand_types(op)[0]).shape)
        buf = self._to_scratch(x, xs, rt.element_type)
        idx = self.layout.unravel(shape)
        lead = len(shape) - len(xs)
        src_idx = [F.splat(F.cidx(0), k) if xs[d] == 1 and shape[lead + d] != 1 else idx[lead + d] for d in range(len(xs))]
        lin = F.ravel(src_idx, xs, k)
        zero = F.vsplat_const(0, rt.element_type, k)
        vw = self.layout.vector_width(k)
        if vw > 1 and xs[-1] == shape[-1] and shape[-1] % vw == 0:
            # the last dim is not broadcast: each run reads contiguous, aligned scratch (vector loads)
            v = F.load_runs(buf, lin, self.layout.valid(shape), zero, k, rt.element_type, vw)
        else:
            v = F.gather(buf, lin, self.layout.valid(shape), zero, k, rt.element_type)
        gpu.BarrierOp()
        self._replace(op, v)

    def op_transpose(self, op):
        x = op.operands[0]
        rt = ir.RankedTensorType(op.results[0].type)
        m, n = list(rt.shape)
        _operand_types(op)
        buf = self._to_scratch(x, [n, m], rt.element_type)
        k = self.layout.frag_len([m, n])
        i, j = self.layout.unravel([m, n])
        v = F.gather(buf, F.ravel([j, i], [n, m], k), self.layout.valid([m, n]),
                     F.vsplat_const(0, rt.element_type, k), k, rt.element_type)
        gpu.BarrierOp()
        self._replace(op, v)

    def op_mma(self, op):
        a, b, acc = tb.operands(op)
        ta, tb_ = [ir.RankedTensorType(t) for t in _operand_types(op)[:2]]
        (m, kk), (_, n) = list(ta.shape), list(tb_.shape)
        ae, be = ta.element_type, tb_.element_type
        f32 = ir.F32Type.get()
        if mma_sync.applies(ae, be, m, n, kk):
            loads = [v.owner if not isinstance(v.owner, ir.Block) and v.owner.name == "tile.load" and
                     isinstance(v.type, ir.RankedTensorType) else None for v in (a, b)]
            self._replace(op, mma_sync.lower(self, a, b, acc, m, n, kk, ae, loads))
            for ld in loads:
                if ld is not None:
                    ld.erase()
            return
        abuf = self._to_scratch_pair(a, [m, kk], ae, b, [kk, n], be)
        sa, sb = abuf
        k = self.layout.frag_len([m, n])
        i, j = self.layout.unravel([m, n])
        valid = self.layout.valid([m, n])
        init = acc if acc is not None else F.vsplat_const(0.0, f32, k)
        loop = scf.ForOp(F.cidx(0), F.cidx(kk), F.cidx(1), [init])
        with ir.InsertionPoint(loop.body):
            kv = F.splat(loop.induction_variable, k)
            ai = arith.AddIOp(arith.MulIOp(i, F.splat(F.cidx(kk), k)).result, kv).result
            bi = arith.AddIOp(arith.MulIOp(kv, F.splat(F.cidx(n), k)).result, j).result
            av = F.gather(sa, ai, valid, F.vsplat_const(0, ae, k), k, ae)
            bv = F.gather(sb, bi, valid, F.vsplat_const(0, be, k), k, be)
            if ae != f32:
                av = arith.ExtFOp(ir.VectorType.get([k], f32), av).result
            if be != f32:
                bv = arith.ExtFOp(ir.VectorType.get([k], f32), bv).result
            scf.YieldOp([vector.FMAOp(av, bv, loop.inner_iter_args[0]).result])
        gpu.BarrierOp()
        self._replace(op, loop.results[0])

    def _to_scratch_pair(self, a, ashape, ae, b, bshape, be):
        na, nb = F.numel(ashape), F.numel(bshape)
        off_b = _align(na * _bytes(ae))
        self.scratch_need = max(self.scratch_need, off_b + nb * _bytes(be))
        sa = self.smem_view(0, na, ae)
        sb = self.smem_view(off_b, nb, be)
        self.scratch_views.append(sa.owner)
        self.scratch_views.append(sb.owner)
        sb.owner.attributes["tessera.scratch_offset"] = ir.IntegerAttr.get(ir.IntegerType.get_signless(64), off_b)
        gpu.BarrierOp()
        ka, kb = self.layout.frag_len(ashape), self.layout.frag_len(bshape)
        self.layout.to_shared(sa, ashape, a, ka)
        self.layout.to_shared(sb, bshape, b, kb)
        gpu.BarrierOp()
        return sa, sb

    def op_reduce(self, op):
        reductions.lower(self, op)

    def op_arange(self, op):
        start = ir.IntegerAttr(op.attributes["start"]).value
        rt = ir.RankedTensorType(op.results[0].type)
        shape = list(rt.shape)
        k = self.layout.frag_len(shape)
        e = self.layout.lanes(k)
        if start:
            e = arith.AddIOp(e, F.splat(F.cidx(start), k)).result
        self._replace(op, arith.IndexCastOp(ir.VectorType.get([k], rt.element_type), e).result)


def _record_operand_types(kern):
    """Tile ops whose operands get retyped before they are lowered remember the tensor types."""
    def visit(op):
        if op.name in ("tile.mma", "tile.reduce", "tile.broadcast", "linalg.transpose"):
            op.attributes["tessera.operand_types"] = ir.ArrayAttr.get([ir.TypeAttr.get(v.type) for v in op.operands])
        return ir.WalkResult.ADVANCE
    kern.g.walk(visit)


def _operand_types(op):
    types = [ir.TypeAttr(t).value for t in ir.ArrayAttr(op.attributes["tessera.operand_types"])]
    del op.attributes["tessera.operand_types"]
    return types


def run(module_op, arch="sm_90a", num_warps=None, num_stages="3"):
    block = module_op.regions[0].blocks[0]
    kernels = [op for op in block.operations if op.operation.name == "func.func" and "tessera.kernel" in op.attributes]
    if not kernels:
        return
    module_op.attributes["gpu.container_module"] = ir.UnitAttr.get()
    with ir.InsertionPoint(block), module_op.location:
        gmod = gpu.GPUModuleOp("kernels")
        gmod.regions[0].blocks.append()
        with ir.InsertionPoint(gmod.regions[0].blocks[0]):
            i8 = ir.IntegerType.get_signless(8)
            space = ir.Attribute.parse("#gpu.address_space<workgroup>")
            memref.GlobalOp(SMEM_BASE, ir.TypeAttr.get(ir.MemRefType.get([0], i8, memory_space=space)),
                            sym_visibility="public", alignment=1024)
    for f in kernels:
        warps = int(num_warps) if num_warps is not None else (
            ir.IntegerAttr(f.attributes["tessera.num_warps"]).value if "tessera.num_warps" in f.attributes else 4)
        kern = _Kernel(f.operation, gmod.operation, warps * 32, arch)
        kern.build()
        kern.rewrite_wgmma_loops(int(num_stages))
        kern.rewrite_mma_loops(int(num_stages))
        _record_operand_types(kern)
        kern.run()
        _finish(kern)
        f.operation.erase()
    gmod.operation.attributes["tessera.arch"] = ir.StringAttr.get(arch)


def _finish(kern):
    base = _align(kern.smem_top)
    for v in kern.scratch_views:
        extra = ir.IntegerAttr(v.attributes["tessera.scratch_offset"]).value if "tessera.scratch_offset" in v.attributes else 0
        with ir.InsertionPoint(v), v.location:
            v.operands[1] = F.cidx(base + extra)
        if "tessera.scratch_offset" in v.attributes:
            del v.attributes["tessera.scratch_offset"]
    total = base + kern.scratch_need
    i64 = ir.IntegerType.get_signless(64)
    kern.g.attributes["tessera.shared_bytes"] = ir.IntegerAttr.get(i64, total)
    kern.g.attributes["tessera.num_warps"] = ir.IntegerAttr.get(i64, kern.T // 32)
    kern.g.attributes["tessera.smem_allocs"] = ir.ArrayAttr.get(
        [ir.ArrayAttr.get([ir.IntegerAttr.get(i64, size), ir.StringAttr.get(str(loc))]) for size, loc in kern.allocs])
