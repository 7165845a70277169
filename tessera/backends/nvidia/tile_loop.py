"""The persistent tile loop (`persistent=True`): the kernel's body runs once per program of the caller's
grid, CTA c taking programs c, c + gridDim.x, ... (`tessera.runtime.persistent` launches at most one
CTA per SM and passes the caller's grid as three trailing i64 parameters).

`wrap` puts the body (everything after the thread-id / shared-memory prologue) in an `scf.for` over the
linear program index t, ending each program with a CTA barrier (the next program reuses shared memory);
`program_id(axis)` is then t unravelled over the caller's grid (x fastest, as CUDA orders blocks) and
`num_programs(axis)` the caller's grid. Loops and barriers of the body stay inside: a K pipeline runs
its prologue, loop and epilogue per program, and a wgmma pipeline invalidates its mbarriers at the end
of each program, after a `fence.proxy.async` (its epilogue's shared stores and the next program's TMA
writes touch the same bytes), before the next one initialises them again (`invalidate_barriers`).
"""
from __future__ import annotations

from mlir import ir
from mlir.dialects import arith, gpu, llvm, nvgpu, nvvm, scf

from . import fragments as F

PERSISTENT = "tessera.persistent"   # on the gpu.func: its last three non-descriptor parameters are the grid


class TileLoop:
    def __init__(self, kern, grid_args):
        self.kern, self.grid = kern, list(grid_args)
        self.loop = None
        self.ids = None

    def wrap(self, body):
        """Move `body` (the kernel's ops after its prologue, in order, without the return) into the loop."""
        gx, gy, gz = self.grid
        first = body[0]
        with ir.InsertionPoint(first), first.location:
            total = arith.MulIOp(arith.MulIOp(gx, gy).result, gz).result
            self.loop = scf.ForOp(gpu.BlockIdOp(gpu.Dimension.x).result, total, gpu.GridDimOp(gpu.Dimension.x).result)
        with ir.InsertionPoint(self.loop.body), first.location:
            self.anchor = arith.ConstantOp(ir.IndexType.get(), 0).operation
            self.end = gpu.BarrierOp()   # the next program reuses shared memory
            scf.YieldOp([])
        for op in body:
            op.move_before(self.end)
        self.kern.g.attributes[PERSISTENT] = ir.UnitAttr.get()

    def program_ids(self):
        """(x, y, z) program ids of the current program."""
        if self.ids is None:
            gx, gy, _ = self.grid
            with ir.InsertionPoint(self.anchor), self.anchor.location:
                t = self.loop.induction_variable
                rest = arith.DivUIOp(t, gx).result
                self.ids = (arith.RemUIOp(t, gx).result, arith.RemUIOp(rest, gy).result,
                            arith.DivUIOp(rest, gy).result)
        return self.ids

    def invalidate_barriers(self, barriers, count):
        """At the end of the program: thread 0 invalidates the `count` mbarriers of the group (a later
        program's mbarrier.init must not meet a live barrier). Before the program's last barrier, every
        thread fences its shared stores (the epilogue's) against the async proxy: the next program's TMA
        writes the same bytes."""
        with ir.InsertionPoint(self.end), self.anchor.location:
            nvvm.FenceProxyOp(nvvm.ProxyKind.async_shared, space=nvvm.SharedSpace.shared_cta)
        with ir.InsertionPoint(self.loop.body.operations[len(self.loop.body.operations) - 1]), self.anchor.location:
            is0 = arith.CmpIOp(arith.CmpIPredicate.eq, self.kern.tid, F.cidx(0)).result
            once = scf.IfOp(is0, [], has_else=False)
            with ir.InsertionPoint(once.then_block):
                ptr, i32 = ir.Type.parse("!llvm.ptr<3>"), ir.IntegerType.get_signless(32)
                for i in range(count):   # mbarrier.get: the barrier's shared address as an integer
                    at = nvgpu.MBarrierGetOp(i32, barriers, F.cidx(i)).result
                    nvvm.MBarrierInvalOp(llvm.IntToPtrOp(ptr, at).result)
                scf.YieldOp([])
