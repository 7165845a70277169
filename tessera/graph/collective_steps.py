"""The executor's host steps for the ts collectives (ts.all_reduce, ts.all_gather, ts.reduce_scatter,
ts.dist_broadcast): instead of launching a tile kernel, the step calls the tessera.dist collective on
its input array (NumPy, CuPy: the collective returns the kind it gets) and stores the result. Every rank
builds the same plan from the same graph and runs its steps in order, so the ranks' collectives match
up. The collective runs on the mesh the op was traced on (its `tessera.mesh`, tessera.graph.ops_dist),
made current for the call: a body may have made it current only while it was traced."""
from __future__ import annotations

from mlir import ir

from ..errors import DistributedError

COLLECTIVES = ("ts.all_reduce", "ts.all_gather", "ts.reduce_scatter", "ts.dist_broadcast")


class HostStep:
    """A plan step that runs Python on the host instead of a kernel: `host(*inputs)` -> the output array.
    Shaped like tessera.graph.plan.Step (args, outs, label) so liveness and the run loop treat it alike."""

    kernel = None

    def __init__(self, host, args, outs, label):
        self.host, self.args, self.outs, self.label = host, args, outs, label
        self.constexprs, self.by_target, self.grid = {}, {}, ()

    def launch_config(self, target):
        return (), {}


def _str(op, key):
    return ir.StringAttr(op.attributes[key]).value


def _int(op, key):
    return ir.IntegerAttr(op.attributes[key]).value


def _call(op):
    """The collective `op` records, as a function of the input array (attributes read once, here)."""
    from .. import dist
    from ..dist.context import current_mesh
    from .ops_dist import mesh_of
    name, axis, size = op.name, _str(op, "axis"), _int(op, "size")
    if name == "ts.all_reduce":
        kind = _str(op, "op")
        run = lambda x: dist.all_reduce(x, op=kind, axis=axis)   # noqa: E731
    elif name == "ts.all_gather":
        dim = _int(op, "dim")
        run = lambda x: dist.all_gather(x, axis=axis, dim=dim)   # noqa: E731
    elif name == "ts.reduce_scatter":
        kind, dim = _str(op, "op"), _int(op, "dim")
        run = lambda x: dist.reduce_scatter(x, op=kind, axis=axis, dim=dim)   # noqa: E731
    else:
        src = _int(op, "src")
        run = lambda x: dist.broadcast(x, src=src, axis=axis)   # noqa: E731
    traced_on = mesh_of(op, default=None)
    on_mesh = {}

    def host(x):
        if "run" not in on_mesh:   # looked up when first run: building a plan (tessera-opt) needs no mesh
            mesh = traced_on if traced_on is not None else current_mesh()
            if mesh.size(axis) != size:   # (an op parsed from text, run on the current mesh)
                raise DistributedError(f"{name} over axis {axis!r} is for {size} ranks; the mesh has "
                                       f"{mesh.size(axis)} (axes {mesh.axes}, shape {mesh.shape})")
            on_mesh["run"] = dist.distribute(mesh=mesh)(run)
        out = on_mesh["run"](x)
        # a world of 1 returns its input: the plan's values are never aliased (outputs go to the caller)
        # (reduce_scatter along dim > 0 returns a strided view; kernels read row-major arrays)
        if out is x or not out.flags.c_contiguous:
            out = _contiguous(out)
        return out
    return host


def _contiguous(a):
    import numpy as np
    if isinstance(a, np.ndarray):
        return np.array(a, order="C", copy=True)
    import cupy
    return cupy.array(a, order="C", copy=True)


def step(builder, op):
    """The HostStep of one collective op of the graph (builder: tessera.graph.plan._Builder)."""
    out = builder.out(op.results[0])
    return HostStep(_call(op), [("full", builder.slot(op.operands[0]))], [out], op.name)
