"""tessera-lower-tile-to-cpu: tile ops → upstream tensor/linalg/scf/memref ops for the CPU JIT.

What it does, per `func.func` marked `tessera.kernel`:
  * appends six index arguments (program id x/y/z, number of programs x/y/z) and replaces
    `tile.program_id` / `tile.num_programs` with them;
  * guards signed integer division and remainder (`tessera.backends.int_division`: no SIGFPE, the
    documented results) and, when a kernel has any that may fault, appends a `memref<1xi64>` fault
    flag: the first program to divide by zero (or INT_MIN // -1) stores the fault's code, 1-based into
    the module attribute `tessera.int_faults` ([location, description] per code), which the runner
    turns into a LaunchError at that line after the launch;
  * bounds-checked loads and stores move a row chunk per vector transfer where the window allows
    (`cpu_vector_io`); other loads become `tensor.generate` (out-of-bounds lanes give `other`, default
    0), other stores and async copies `scf.for` nests with an in-bounds (and mask) `scf.if`;
  * shared buffers become `memref.alloca` at function entry while a kernel's total stays within
    CPU_STACK_SHARED, `memref.alloc` beyond it (tessera-cpu-scratch makes it part of the launch's scratch);
    async-copy groups and barriers vanish (programs run one after another on the CPU);
  * `tile.mma` → `linalg.matmul` into an f32 accumulator (bf16/f16 operands widened once per tile),
    `tile.reduce` → `linalg.reduce`,
    `tile.broadcast` / `tile.arange` → `tensor.splat` / `tensor.generate`;
  * elementwise arith/math ops on tensors become a few `linalg.generic`s (`cpu_elementwise`);
  * adds two C-interface entries: `@<name>_range(args..., gx, gy, gz, first, last[, fault flag])` runs the
    programs with linear ids in [first, last) (x fastest), so a launcher can split a grid over threads
    (tessera.runtime.cpu_launch), and `@<name>_grid(args..., gx, gy, gz[, fault flag])` runs the whole grid.
Assumes: IR produced by the tessera frontend or of the same form (views defined by `tile.view`,
static tile shapes). Leaves tensor-level IR; bufferization and LLVM lowering follow in the stage.
"""
from __future__ import annotations

from mlir import ir
from mlir.dialects import arith, func, linalg, memref, scf, tensor

from ..ir import builders as tb
from ..backends import int_division
from ..errors import OutOfResources
from ..ir.locations import error_at
from . import cpu_vector_io
from .cpu_elementwise import group_elementwise

# A program's tile.alloc_shared buffers: above this total a kernel gets an OutOfResources at its allocation
# (every NVIDIA target allows less), since on the CPU it is a mistake, not a kernel
CPU_SHARED_BUDGET = 1 << 20
# ... and past this much they go to the heap: the stack of the thread that launches a kernel may be small
# (a 1 MiB buffer overflowed a 512 KiB thread stack: a segfault)
CPU_STACK_SHARED = 64 << 10

name = "tessera-lower-tile-to-cpu"


def _idx(v):
    return arith.ConstantOp(ir.IndexType.get(), v).result


def _zero(t):
    if isinstance(t, ir.IntegerType) or str(t).startswith("i"):
        return arith.ConstantOp(t, ir.IntegerAttr.get(t, 0)).result
    return arith.ConstantOp(t, ir.FloatAttr.get(t, 0.0)).result


def _and(a, b):
    return b if a is None else arith.AndIOp(a, b).result


def _attr_ints(op, key):
    return list(ir.DenseI64ArrayAttr(op.attributes[key]))


class _ViewInfo:
    """Everything a consumer needs about a `tile.view`: base, per-dim offsets, sizes, squeeze."""

    def __init__(self, view_value):
        op = view_value.owner
        if op.name != "tile.view":
            raise ValueError("tile.load/store/cp_async of a window that is not defined by tile.view")
        self.base = op.operands[0]
        self.offsets = list(op.operands)[1:]
        self.sizes = _attr_ints(op, "sizes")
        self.squeeze = [bool(x) for x in _attr_ints(op, "squeeze")]
        self.free = [d for d, q in enumerate(self.squeeze) if not q]

    def dims(self):
        return [memref.DimOp(self.base, _idx(d)).result for d in range(len(self.sizes))]

    def index_and_bounds(self, lanes, dims):
        """Global indices for these lanes, and the i1 in-bounds predicate (None: always)."""
        idx, inb = [], None
        lane_of = dict(zip(self.free, lanes))
        for d, off in enumerate(self.offsets):
            i = arith.AddIOp(off, lane_of[d]).result if d in lane_of else off
            idx.append(i)
            inb = _and(inb, arith.CmpIOp(arith.CmpIPredicate.ult, i, dims[d]).result)
        return idx, inb


def _loop_nest(shape, body):
    """scf.for nest over a static shape; body(lanes) is emitted innermost."""
    if not shape:
        body([])
        return
    lanes = []

    def rec(k):
        loop = scf.ForOp(_idx(0), _idx(shape[k]), _idx(1))
        with ir.InsertionPoint(loop.body):
            lanes.append(loop.induction_variable)
            if k + 1 < len(shape):
                rec(k + 1)
            else:
                body(list(lanes))
            scf.YieldOp([])
    rec(0)


def _generate(result_type, body):
    """tensor.generate whose body(lanes) returns the element value."""
    g = tensor.GenerateOp(result_type, [])
    rank = len(ir.RankedTensorType(result_type).shape)
    blk = g.regions[0].blocks.append(*([ir.IndexType.get()] * rank))
    with ir.InsertionPoint(blk):
        tensor.YieldOp(body(list(blk.arguments)))
    return g.result


def _if_else(cond, t, then_fn, else_fn):
    op = scf.IfOp(cond, [t], has_else=True)
    with ir.InsertionPoint(op.then_block):
        scf.YieldOp([then_fn()])
    with ir.InsertionPoint(op.else_block):
        scf.YieldOp([else_fn()])
    return op.result


def _if(cond, then_fn):
    if cond is None:
        then_fn()
        return
    op = scf.IfOp(cond, [], has_else=False)
    with ir.InsertionPoint(op.then_block):
        then_fn()
        scf.YieldOp([])


def _is_tile(value):
    return value is not None and isinstance(value.type, ir.RankedTensorType)


def _elem(value, lanes):
    """Element of a tile (tensor.extract) or the scalar itself."""
    if isinstance(value.type, ir.RankedTensorType) or str(value.type).startswith("tensor<"):
        return tensor.ExtractOp(value, lanes).result
    return value


def _to_f32(x):
    t = ir.RankedTensorType(x.type)
    if isinstance(t.element_type, ir.F32Type) or not isinstance(t.element_type, (ir.BF16Type, ir.F16Type)):
        return x
    return arith.ExtFOp(ir.RankedTensorType.get(list(t.shape), ir.F32Type.get()), x).result


def _any(cond):
    """An i1 tile reduced to one i1: is any lane true (in bytes: i1 buffers are a pitfall, see widen-i1)."""
    t = ir.RankedTensorType(cond.type)
    i8 = ir.IntegerType.get_signless(8)
    wide = arith.ExtUIOp(ir.RankedTensorType.get(list(t.shape), i8), cond).result
    init = linalg.fill(_zero(i8), outs=[tensor.EmptyOp([], i8).result])
    red = linalg.ReduceOp([ir.RankedTensorType.get([], i8)], [wide], [init],
                          ir.DenseI64ArrayAttr.get(list(range(len(t.shape)))))
    blk = red.regions[0].blocks.append(i8, i8)
    with ir.InsertionPoint(blk):
        linalg.YieldOp([arith.MaxUIOp(*blk.arguments).result])
    return arith.CmpIOp(arith.CmpIPredicate.ne, tensor.ExtractOp(red.results[0], []).result, _zero(i8)).result


class _FaultFlag:
    """`int_division.guard`'s record callback: the kernel's fault flag argument (added at the first
    fault site) keeps the code of the first fault, so the error names the first division that failed."""

    def __init__(self, lowering, sites):
        self.lowering, self.sites, self.arg = lowering, sites, None

    def __call__(self, cond, kind, op):
        if self.arg is None:
            self.arg = self.lowering.add_argument(ir.MemRefType.get([1], ir.IntegerType.get_signless(64)))
        self.sites.append(ir.ArrayAttr.get([ir.StringAttr.get(str(op.location)),
                                            ir.StringAttr.get(int_division.describe(kind, op))]))
        hit = _any(cond) if isinstance(cond.type, ir.RankedTensorType) else cond
        i64 = ir.IntegerType.get_signless(64)
        old = memref.LoadOp(self.arg, [_idx(0)]).result
        first = arith.AndIOp(hit, arith.CmpIOp(arith.CmpIPredicate.eq, old, _zero(i64)).result).result
        code = arith.ConstantOp(i64, ir.IntegerAttr.get(i64, len(self.sites))).result
        memref.StoreOp(arith.SelectOp(first, code, old).result, self.arg, [_idx(0)])


class _Lowering:
    def __init__(self, f, fault_sites):
        self.f = f
        self.entry = f.regions[0].blocks[0]
        self.shared_bytes = 0
        self.faults = _FaultFlag(self, fault_sites)

    def add_argument(self, t):
        arg = self.entry.add_argument(t, self.f.location)
        ft = ir.FunctionType(ir.TypeAttr(self.f.attributes["function_type"]).value)
        self.f.attributes["function_type"] = ir.TypeAttr.get(ir.FunctionType.get(list(ft.inputs) + [t], []))
        return arg

    def run(self):
        extra = [self.add_argument(ir.IndexType.get()) for _ in range(6)]
        self.pids, self.nprogs = extra[:3], extra[3:]
        int_division.guard(self.f, self.faults)
        ops = []

        def collect(op):
            if op.name.startswith("tile."):
                ops.append(op)
            return ir.WalkResult.ADVANCE
        self.f.walk(collect)
        views = []
        for op in ops:
            if op.name == "tile.view":
                views.append(op)
                continue
            with ir.InsertionPoint(op), op.location:
                getattr(self, "op_" + op.name[5:])(op)
        for v in reversed(views):
            if list(v.results[0].uses):
                raise error_at(v.location, "a window (tile.view) may only be used by tile.load/store/cp_async")
            v.erase()

    def _replace(self, op, new):
        op.results[0].replace_all_uses_with(new)
        op.erase()

    def op_program_id(self, op):
        self._replace(op, self.pids[ir.IntegerAttr(op.attributes["axis"]).value])

    def op_num_programs(self, op):
        self._replace(op, self.nprogs[ir.IntegerAttr(op.attributes["axis"]).value])

    def op_alloc_shared(self, op):
        t = ir.MemRefType(op.results[0].type)
        n = 1
        for d in t.shape:
            n *= d
        self.shared_bytes += n * max(1, (getattr(t.element_type, "width", 32) + 7) // 8)
        if self.shared_bytes > CPU_SHARED_BUDGET:
            raise error_at(op.location, f"shared memory: the kernel allocates {self.shared_bytes} bytes of shared "
                           f"buffers; the CPU backend's budget is {CPU_SHARED_BUDGET} bytes (sm_90a allows 232448, "
                           "sm_80 166912)", OutOfResources,
                           required=self.shared_bytes, budget=CPU_SHARED_BUDGET, resource="shared memory",
                           suggestion="smaller shared buffers")
        plain = ir.MemRefType.get(list(t.shape), t.element_type)
        with ir.InsertionPoint.at_block_begin(self.entry):
            on_stack = self.shared_bytes <= CPU_STACK_SHARED
            buf = (memref.AllocaOp if on_stack else memref.AllocOp)(plain, [], []).result
        self._replace(op, buf)

    def op_load(self, op):
        src, mask, other = tb.operands(op)
        rt = op.results[0].type
        if tb.is_window(src.type):
            vi = _ViewInfo(src)
            dims = vi.dims()
            et = ir.RankedTensorType(rt).element_type if str(rt).startswith("tensor<") else rt

            def elem(lanes):
                idx, inb = vi.index_and_bounds(lanes, dims)
                if mask is not None:
                    inb = _and(inb, _elem(mask, lanes))
                fallback = (lambda: _elem(other, lanes)) if other is not None else (lambda: _zero(et))
                if inb is None:
                    return memref.LoadOp(vi.base, idx).result
                return _if_else(inb, et, lambda: memref.LoadOp(vi.base, idx).result, fallback)
            if not str(rt).startswith("tensor<"):
                new = elem([])
            elif mask is None and not _is_tile(other) and cpu_vector_io.supported(vi, et):
                pad = other if other is not None else _zero(et)
                new = cpu_vector_io.load(vi, rt, pad)
            else:
                new = _generate(rt, elem)
        else:  # a shared buffer read as a tile
            new = _generate(rt, lambda lanes: memref.LoadOp(src, lanes).result)
        self._replace(op, new)

    def op_store(self, op):
        dst, value, mask = tb.operands(op)
        if tb.is_window(dst.type):
            vi = _ViewInfo(dst)
            dims = vi.dims()
            shape, _ = tb.window_shape_elem(dst.type)

            def body(lanes):
                idx, inb = vi.index_and_bounds(lanes, dims)
                if mask is not None:
                    inb = _and(inb, _elem(mask, lanes))
                _if(inb, lambda: memref.StoreOp(_elem(value, lanes), vi.base, idx))
            et = ir.RankedTensorType(value.type).element_type if _is_tile(value) else value.type
            if mask is None and cpu_vector_io.supported(vi, et):
                cpu_vector_io.store(vi, value)
            else:
                _loop_nest(shape, body)
        else:
            shape = list(ir.MemRefType(dst.type).shape)
            if mask is None:
                _loop_nest(shape, lambda lanes: memref.StoreOp(_elem(value, lanes), dst, lanes))
            else:
                _loop_nest(shape, lambda lanes: _if(_elem(mask, lanes),
                                                    lambda: memref.StoreOp(_elem(value, lanes), dst, lanes)))
        op.erase()

    def op_cp_async(self, op):
        dst, src = list(op.operands)
        vi = _ViewInfo(src)
        dims = vi.dims()
        mt = ir.MemRefType(dst.type)

        def body(lanes):
            idx, inb = vi.index_and_bounds(lanes, dims)
            v = _if_else(inb, mt.element_type, lambda: memref.LoadOp(vi.base, idx).result,
                         lambda: _zero(mt.element_type)) if inb is not None else memref.LoadOp(vi.base, idx).result
            memref.StoreOp(v, dst, lanes)
        _loop_nest(list(mt.shape), body)
        op.erase()

    def op_cp_commit_group(self, op):
        op.erase()

    op_cp_wait_group = op_barrier = op_cp_commit_group

    def op_mma(self, op):
        a, b, init = tb.operands(op)
        rt = ir.RankedTensorType(op.results[0].type)
        if isinstance(rt.element_type, ir.F32Type):   # bf16 / f16 operands widened once per tile, not per product
            a, b = (_to_f32(x) for x in (a, b))
        if init is None:
            empty = tensor.EmptyOp(list(rt.shape), rt.element_type).result
            init = linalg.fill(_zero(rt.element_type), outs=[empty])
        self._replace(op, linalg.matmul(a, b, outs=[init]))

    def op_reduce(self, op):
        x = op.operands[0]
        kind = ir.StringAttr(op.attributes["kind"]).value
        axis = ir.IntegerAttr(op.attributes["axis"]).value
        xt = ir.RankedTensorType(x.type)
        et = xt.element_type
        shape = [s for i, s in enumerate(xt.shape) if i != axis]
        is_f = not str(et).startswith("i")
        if kind == "sum":
            ident = _zero(et)
        elif is_f:
            ident = arith.ConstantOp(et, ir.FloatAttr.get(et, float("-inf") if kind == "max" else float("inf"))).result
        else:
            bits = ir.IntegerType(et).width
            v = -(1 << (bits - 1)) if kind == "max" else (1 << (bits - 1)) - 1
            ident = arith.ConstantOp(et, ir.IntegerAttr.get(et, v)).result
        empty = tensor.EmptyOp(shape, et).result
        init = linalg.fill(ident, outs=[empty])
        red = linalg.ReduceOp([ir.RankedTensorType.get(shape, et)], [x], [init], ir.DenseI64ArrayAttr.get([axis]))
        blk = red.regions[0].blocks.append(et, et)
        with ir.InsertionPoint(blk):
            a, b = blk.arguments
            if kind == "sum":
                r = (arith.AddFOp if is_f else arith.AddIOp)(a, b).result
            elif kind == "max":
                r = (arith.MaximumFOp if is_f else arith.MaxSIOp)(a, b).result
            else:
                r = (arith.MinimumFOp if is_f else arith.MinSIOp)(a, b).result
            linalg.YieldOp([r])
        res = red.results[0]
        if not shape:
            res = tensor.ExtractOp(res, []).result
        self._replace(op, res)

    def op_broadcast(self, op):
        x = op.operands[0]
        rt = ir.RankedTensorType(op.results[0].type)
        if not str(x.type).startswith("tensor<"):
            self._replace(op, tensor.SplatOp(rt, x, []).result)
            return
        xs = list(ir.RankedTensorType(x.type).shape)
        lead = len(rt.shape) - len(xs)

        def elem(lanes):
            src = [(_idx(0) if xs[k] == 1 and rt.shape[lead + k] != 1 else lanes[lead + k]) for k in range(len(xs))]
            return tensor.ExtractOp(x, src).result
        self._replace(op, _generate(rt, elem))

    def op_arange(self, op):
        start = ir.IntegerAttr(op.attributes["start"]).value
        rt = ir.RankedTensorType(op.results[0].type)

        def elem(lanes):
            i = arith.AddIOp(lanes[0], _idx(start)).result if start else lanes[0]
            return arith.IndexCastOp(rt.element_type, i).result
        self._replace(op, _generate(rt, elem))


def _add_grid_wrapper(module, f, flag_type=None):
    """The public C-interface entries. `@<name>_range(args..., gx, gy, gz, first, last[, flag])` runs the
    programs whose linear id (x fastest, then y, then z: the order of a loop nest over z, y, x) is in
    [first, last), so a launcher can split a grid into contiguous chunks, one per thread;
    `@<name>_grid(args..., gx, gy, gz[, flag])` runs the whole grid through it."""
    name = ir.StringAttr(f.attributes["sym_name"]).value
    ft = ir.FunctionType(ir.TypeAttr(f.attributes["function_type"]).value)
    flag = [flag_type] if flag_type is not None else []
    n_user = len(ft.inputs) - 6 - len(flag)
    user_inputs = list(ft.inputs)[:n_user]
    idx = ir.IndexType.get()
    with ir.InsertionPoint(module.regions[0].blocks[0]), f.location:
        ranged = func.FuncOp(name + "_range", (user_inputs + [idx] * 5 + flag, []))
        whole = func.FuncOp(name + "_grid", (user_inputs + [idx] * 3 + flag, []))
    for w in (ranged, whole):
        w.attributes["llvm.emit_c_interface"] = ir.UnitAttr.get()
    with ir.InsertionPoint(ranged.add_entry_block()), f.location:
        args = list(ranged.arguments)
        user, g, (first, last), fl = args[:n_user], args[n_user:n_user + 3], args[n_user + 3:n_user + 5], \
            args[n_user + 5:]
        loop = scf.ForOp(first, last, _idx(1))
        with ir.InsertionPoint(loop.body):
            pid = loop.induction_variable
            x, yz = arith.RemUIOp(pid, g[0]).result, arith.DivUIOp(pid, g[0]).result
            y, z = arith.RemUIOp(yz, g[1]).result, arith.DivUIOp(yz, g[1]).result
            func.CallOp([], ir.FlatSymbolRefAttr.get(name), user + [x, y, z] + g + fl)
            scf.YieldOp([])
        func.ReturnOp([])
    with ir.InsertionPoint(whole.add_entry_block()), f.location:
        args = list(whole.arguments)
        user, g, fl = args[:n_user], args[n_user:n_user + 3], args[n_user + 3:]
        n = arith.MulIOp(arith.MulIOp(g[0], g[1]).result, g[2]).result
        func.CallOp([], ir.FlatSymbolRefAttr.get(name + "_range"), user + g + [_idx(0), n] + fl)
        func.ReturnOp([])


def run(module_op):
    module = module_op
    kernels = []
    for op in module.regions[0].blocks[0].operations:
        if op.operation.name == "func.func" and "tessera.kernel" in op.attributes:
            kernels.append(op)
    sites = list(ir.ArrayAttr(module.attributes["tessera.int_faults"])) if "tessera.int_faults" in module.attributes \
        else []
    for f in kernels:
        if not f.regions[0].blocks:
            continue  # a declaration: nothing to lower
        ft = ir.FunctionType(ir.TypeAttr(f.attributes["function_type"]).value)
        if len(ft.results):
            raise error_at(f.location, "kernels return nothing: store results into an output tensor")
        with f.location:
            lowering = _Lowering(f.operation, sites)
            lowering.run()
            group_elementwise(f.operation)   # one loop nest per group of elementwise ops, not per op (issue 16)
            f.attributes["sym_visibility"] = ir.StringAttr.get("private")
            del f.attributes["tessera.kernel"]  # lowered: running the pass again leaves it alone
            flag = lowering.faults.arg
            _add_grid_wrapper(module, f.operation, flag.type if flag is not None else None)
    if sites:
        module.attributes["tessera.int_faults"] = ir.ArrayAttr.get(sites)
