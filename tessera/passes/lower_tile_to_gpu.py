"""tessera-lower-tile-to-gpu{arch=sm_80|sm_90a num_warps=4 num_stages=3 warp_specialize=0 persistent=0}: tile IR → gpu.module/gpu.func (SIMT).

One program becomes one CTA of num_warps·32 threads (with persistent=1, one iteration of a loop over
the programs of the caller's grid, which the kernel takes as three trailing index parameters:
`backends/nvidia/tile_loop.py`). Tiles become blocked fragments
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
each shared buffer) and `tessera.smem_scratch` (size and location of the largest exchange) on the gpu.func
for the resource check; the original func.func is removed.
"""
from __future__ import annotations

from mlir import ir
from mlir.dialects import arith, gpu, memref, nvvm, scf, vector

from ..backends import int_division
from ..backends.nvidia import fragments as F, runs, mma_pipeline, mma_sync, reductions, wgmma, wgmma_tile
from ..backends.nvidia.tile_loop import TileLoop
from ..backends.nvidia.common import align as align_to, arg_number, elem_bytes
from ..backends.nvidia.memory_lowering import MemoryLowering
from ..ir import builders as tb
from . import options
from ..ir.locations import error_at

name = "tessera-lower-tile-to-gpu"

_ELEMENTWISE = ("arith.", "math.")
GROUP_M = 8   # row blocks per group in the grouped program order of GEMM grids
_CONTRACTIBLE = ("arith.mulf", "arith.addf", "arith.subf")
SMEM_BASE = "__tessera_smem"
SMEM_VIEW_BYTES = 1 << 20


def _is_tensor(t):
    return isinstance(t, ir.RankedTensorType)


def _run_length(arg_types):
    """Elements per run of the blocked fragments: 16 bytes of the narrowest global element type
    (8 for kernels on 16- or 8-bit tensors, else 4)."""
    sizes = [elem_bytes(ir.MemRefType(t).element_type) for t in arg_types if isinstance(t, ir.MemRefType)]
    return 8 if sizes and min(sizes) <= 2 else 4


class _Kernel(MemoryLowering):
    def __init__(self, f, gmod, threads, arch="sm_80"):
        self.f, self.gmod, self.T, self.arch = f, gmod, threads, arch
        self.smem_top = 0
        self.scratch_need = 0
        self.allocs = []
        self.scratch_views = []
        self.scratch_loc = None
        self.pitched = []       # (shared buffer view, cols, pitch): 2-D buffers with padded rows
        self.warp_specialize = False
        self.persistent = False
        self.tile_loop = None   # tile_loop.TileLoop of a persistent kernel
        self.consumer_regions = []   # (scf.if of a warp-specialised kernel, consumer threads): see _named_barriers
        self.gemm_loops = 0     # tensor-core K loops rewritten (wgmma or the cp.async pipeline)
        self._grouped = None
        self.uses_program_axis2 = False

    # -- set-up ------------------------------------------------------------------------------
    def build(self):
        fname = ir.StringAttr(self.f.attributes["sym_name"]).value
        ft = ir.FunctionType(ir.TypeAttr(self.f.attributes["function_type"]).value)
        self.wgmma_loops = []
        self.read_args = self._global_args_read()
        aligned = [bool(ir.BoolAttr(a).value) for a in ir.ArrayAttr(self.f.attributes["tessera.tma_ok"])] \
            if "tessera.tma_ok" in self.f.attributes else []
        self.aligned_args = {i for i, ok in enumerate(aligned) if ok}
        whole = [bool(ir.BoolAttr(a).value) for a in ir.ArrayAttr(self.f.attributes["tessera.whole_chunks"])] \
            if "tessera.whole_chunks" in self.f.attributes else []
        self.whole_chunk_args = {i for i, ok in enumerate(whole) if ok and i in self.aligned_args}
        if self.arch == "sm_90a":
            def visit(op):
                if op.name == "scf.for" and "tessera.wgmma" in op.attributes:
                    self.wgmma_loops.append(op)
                return ir.WalkResult.ADVANCE
            self.f.walk(visit)
        hidden = [ir.IndexType.get()] * (3 if self.persistent else 0)   # the caller's grid (runtime.persistent)
        inputs = list(ft.inputs) + hidden + [ir.Type.parse("!llvm.ptr")] * (2 * len(self.wgmma_loops))
        ft = ir.FunctionType.get(inputs, [])
        with ir.InsertionPoint(self.gmod.regions[0].blocks[0]), self.f.location:
            g = gpu.GPUFuncOp(ir.TypeAttr.get(ft), sym_name=fname, kernel=True, known_block_size=[self.T, 1, 1])
            if "tessera.index32" in self.f.attributes:   # for tessera-narrow-index
                g.attributes["tessera.index32"] = ir.UnitAttr.get()
            blk = g.regions[0].blocks.append(*ft.inputs)
            with ir.InsertionPoint(blk):
                ret = gpu.ReturnOp([])
        old = self.f.regions[0].blocks[0]
        for a, b in zip(old.arguments, blk.arguments):
            a.replace_all_uses_with(b)
        body = []
        for op in list(old.operations):
            if op.name == "func.return":
                op.erase()
                continue
            op.move_before(ret)
            body.append(op.operation)
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
        if self.persistent and body:
            n = len(ft.inputs) - len(hidden) - 2 * len(self.wgmma_loops)
            self.tile_loop = TileLoop(self, list(blk.arguments)[n:n + 3])
            self.tile_loop.wrap(body)
        return g

    def _publish_store(self, window):
        """A global store becomes visible to the whole CTA before the program's next statement when the
        kernel also reads that tensor: the store and a later load may be done by different threads (a
        scalar store is thread 0's), and the tile program's statements are sequential (as on the CPU)."""
        if arg_number(window.owner.operands[0]) in self.read_args:
            gpu.BarrierOp()

    def reserve(self, nbytes: int, align: int = 128, loc=None) -> int:
        """Byte offset of a fixed region of the dynamic shared-memory block."""
        off = align_to(self.smem_top, align)
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
            self.gemm_loops += 1
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
            self.gemm_loops += 1

    def smem_elems(self, elem):
        """The whole dynamic shared-memory block as a flat memref of `elem`."""
        return self.smem_view(0, SMEM_VIEW_BYTES // elem_bytes(elem), elem)

    def smem_view(self, byte_offset: int, n: int, elem):
        space = ir.Attribute.parse("#gpu.address_space<workgroup>")
        t = ir.MemRefType.get([n], elem, memory_space=space)
        return memref.ViewOp(t, self.smem, F.cidx(byte_offset), []).result

    def scratch(self, n, elem):
        """A flat view of the scratch area (placed after all shared buffers once they are known)."""
        v = self.smem_view(0, n, elem)
        self._grow_scratch(n * elem_bytes(elem), v.owner.location)
        self.scratch_views.append(v.owner)
        return v

    def _grow_scratch(self, nbytes, loc):
        # the largest exchange sizes the area: an OutOfResources names it when it is what does not fit
        if nbytes > self.scratch_need:
            self.scratch_need, self.scratch_loc = nbytes, loc

    # -- the rewrite -------------------------------------------------------------------------------
    def frag_type(self, t, op=None):
        """The lowered type of a tile: its blocked fragment, or for an op tessera-place-layout-conversions
        kept in the mma layout, its accumulator registers."""
        tt = ir.RankedTensorType(t)
        if op is not None and _MMA_GRID in op.attributes:
            return ir.VectorType.get([mma_pipeline.acc_count(list(tt.shape), _grid(op))], tt.element_type)
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
        self.uses_program_axis2 = any(op.name == "tile.program_id" and ir.IntegerAttr(op.attributes["axis"]).value == 2
                                      for op in ops)
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
                    single = all(_replicated(x) for x in op.operands if _is_tensor(x.type))
                    for r in op.results:
                        if _is_tensor(r.type):
                            single = single and F.numel(ir.RankedTensorType(r.type).shape) == 1
                            r.set_type(self.frag_type(r.type, op))
                            tile_op = True
                    if tile_op and single:
                        op.attributes[REPLICATED] = ir.UnitAttr.get()
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

        def unmark(op):
            if REPLICATED in op.attributes:
                del op.attributes[REPLICATED]
            return ir.WalkResult.ADVANCE
        self.g.walk(unmark)

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
        vt = self.frag_type(tt, op)
        new = arith.ConstantOp(vt, ir.DenseElementsAttr.get_splat(vt, attr.get_splat_value())).result
        if F.numel(tt.shape) == 1:
            new.owner.attributes[REPLICATED] = ir.UnitAttr.get()
        self._replace(op, new)

    def _block_id(self, axis):
        if self.tile_loop is not None:
            return self.tile_loop.program_ids()[axis]
        return gpu.BlockIdOp([gpu.Dimension.x, gpu.Dimension.y, gpu.Dimension.z][axis]).result

    def _grid_dim(self, axis):
        if self.tile_loop is not None:
            return self.tile_loop.grid[axis]
        return gpu.GridDimOp([gpu.Dimension.x, gpu.Dimension.y, gpu.Dimension.z][axis]).result

    def op_program_id(self, op):
        axis = ir.IntegerAttr(op.attributes["axis"]).value
        if axis < 2 and self._grouped_ids() is not None:
            self._replace(op, self._grouped_ids()[axis])
            return
        self._replace(op, self._block_id(axis))

    def _grouped_ids(self):
        """(program_id(0), program_id(1)) in the L2-friendly grouped order of a GEMM kernel (a tensor-core
        K loop, a 2-D grid): CTAs launched one after another (x fastest) walk GROUP_M row blocks down a
        column of output tiles before moving right, so they share A row panels and B column panels in L2
        (Triton's `GROUP_SIZE_M` order, done by the compiler). A bijection of the grid: each program still
        computes one tile, only the launch order of tiles changes. None when it does not apply."""
        if not self.gemm_loops or self.uses_program_axis2:
            return None
        if self._grouped is None:
            anchor = self.tile_loop.anchor if self.tile_loop is not None else self.layout.anchor
            with ir.InsertionPoint(anchor), anchor.location:
                dx, dy = self._grid_dim(0), self._grid_dim(1)
                pid = arith.AddIOp(self._block_id(0), arith.MulIOp(self._block_id(1), dx).result).result
                width = arith.MulIOp(F.cidx(GROUP_M), dy).result
                first_m = arith.MulIOp(arith.DivUIOp(pid, width).result, F.cidx(GROUP_M)).result
                size_m = arith.MinUIOp(arith.SubIOp(dx, first_m).result, F.cidx(GROUP_M)).result
                within = arith.RemUIOp(pid, width).result
                self._grouped = (arith.AddIOp(first_m, arith.RemUIOp(within, size_m).result).result,
                                 arith.DivUIOp(within, size_m).result)
        return self._grouped

    def op_convert_layout(self, op):
        """mma layout → blocked: the accumulators through one padded shared-memory exchange."""
        shape = list(ir.RankedTensorType(op.results[0].type).shape)
        self._replace(op, mma_pipeline.convert_to_blocked(self, op.operands[0], shape, _grid(op)))

    def op_num_programs(self, op):
        axis = ir.IntegerAttr(op.attributes["axis"]).value
        self._replace(op, self._grid_dim(axis))

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
        if _MMA_GRID in op.attributes:   # a scalar for an op kept in the mma layout
            self._replace(op, F.splat(x, ir.VectorType(self.frag_type(rt, op)).shape[0]))
            return
        if not isinstance(x.type, ir.VectorType) or _replicated(x):
            if "tessera.operand_types" in op.attributes:
                del op.attributes["tessera.operand_types"]
            if isinstance(x.type, ir.VectorType):   # every thread holds the one element: no exchange
                x = vector.ExtractOp(x, [], [0]).result
            v = F.splat(x, k)
            if F.numel(shape) == 1:
                v.owner.attributes[REPLICATED] = ir.UnitAttr.get()
            self._replace(op, v)
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
            v = runs.load_runs(buf, lin, self.layout.valid(shape), zero, k, rt.element_type, vw)
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
        if wgmma_tile.applies(self.arch, self.T, self.warp_specialize, ae, be, m, n, kk):
            self._replace(op, wgmma_tile.lower(self, a, b, acc, m, n, kk, ae))
            return
        if mma_sync.applies(ae, be, m, n, kk):
            loads = [v.owner if not isinstance(v.owner, ir.Block) and v.owner.name == "tile.load" and
                     isinstance(v.type, ir.RankedTensorType) else None for v in (a, b)]
            self._replace(op, mma_sync.lower(self, a, b, acc, m, n, kk, ae, loads, keep_mma=_MMA_GRID in op.attributes))
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
        off_b = align_to(na * elem_bytes(ae))
        sa = self.smem_view(0, na, ae)
        self._grow_scratch(off_b + nb * elem_bytes(be), sa.owner.location)
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


# a one-element tile that every thread holds (not only the owner of element 0): made from a scalar, or
# elementwise from such tiles; broadcasting it needs no exchange through shared memory
REPLICATED = "tessera.replicated"
_MMA_GRID = "tessera.mma_grid"   # tessera-place-layout-conversions: the op's tile stays in the mma layout


def _grid(op):
    return [ir.IntegerAttr(x).value for x in ir.ArrayAttr(op.attributes[_MMA_GRID])]


def _replicated(v) -> bool:
    return not isinstance(v.owner, ir.Block) and REPLICATED in v.owner.attributes


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


OPTIONS = {"arch": options.ARCH, "num_warps": options.NUM_WARPS, "num_stages": options.NUM_STAGES,
           "warp_specialize": options.FLAG, "persistent": options.FLAG}


def run(module_op, arch="sm_90a", num_warps=None, num_stages=3, warp_specialize=False, persistent=False):
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
        int_division.guard(f.operation)   # x // 0, x % 0, INT_MIN // -1: PTX's results, never LLVM's undefined ones
        kern = _Kernel(f.operation, gmod.operation, warps * 32, arch)
        kern.warp_specialize = str(warp_specialize).lower() in ("1", "true")
        kern.persistent = str(persistent).lower() in ("1", "true")
        kern.build()
        kern.rewrite_wgmma_loops(int(num_stages))
        kern.rewrite_mma_loops(int(num_stages))
        _record_operand_types(kern)
        kern.run()
        _named_barriers(kern)
        _finish(kern)
        f.operation.erase()
    gmod.operation.attributes["tessera.arch"] = ir.StringAttr.get(arch)


def _named_barriers(kern):
    """In the consumers' branch of a warp-specialised kernel (which holds the rest of the kernel) every CTA
    barrier becomes named barrier 1 over the consumer threads: the producer warpgroup never arrives."""
    i32 = ir.IntegerType.get_signless(32)
    for region_op, threads in kern.consumer_regions:
        found = []

        def visit(op):
            if op.name == "gpu.barrier":
                found.append(op)
            return ir.WalkResult.ADVANCE
        for o in region_op.regions[1].blocks[0].operations:
            o.operation.walk(visit)
        for op in found:
            with ir.InsertionPoint(op), op.location:
                nvvm.BarrierOp(None, barrierId=arith.ConstantOp(i32, 1).result,
                               numberOfThreads=arith.ConstantOp(i32, threads).result)
            op.erase()


def _finish(kern):
    base = align_to(kern.smem_top)
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
    if kern.scratch_need:
        kern.g.attributes["tessera.smem_scratch"] = ir.ArrayAttr.get(
            [ir.IntegerAttr.get(i64, kern.scratch_need), ir.StringAttr.get(str(kern.scratch_loc))])
