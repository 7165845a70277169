"""What a tessera.dist collective records when it gets a traced tensor (DESIGN §12, §14): one ts
collective op (ts.all_reduce, ts.all_gather, ts.reduce_scatter, ts.dist_broadcast). The mesh current
at trace time fixes the axis size, so the result type is known; the compiled function's cache key
holds the mesh (tessera.frontend.function.Signature.key), so another mesh traces another graph. Each op
names its mesh in `tessera.mesh` (a key of MESHES): a body may make a mesh current only while it is
traced (`dist.distribute(mesh=m)(...)` inside it), and the graph runs, and is differentiated, after
that block has closed, with the same mesh. The
executor runs each op as a host step calling the same tessera.dist collective (tessera.graph.collective_steps);
every rank runs the same plan in the same order, so the collectives match up."""
from __future__ import annotations

from mlir import ir

from ..frontend.function import GraphTensor
from .ops import _create, ttype


MESHES: dict = {}   # id(mesh) -> mesh, for every mesh a traced collective ran on (kept alive: ids stay unique)


def _i64(v):
    return ir.IntegerAttr.get(ir.IntegerType.get_signless(64), int(v))


_CURRENT = object()


def mesh_of(op, default=_CURRENT):
    """The mesh a collective op was traced on; for an op without a known `tessera.mesh` (one parsed from
    text), the current mesh, or `default` when given."""
    if "tessera.mesh" in op.attributes:
        found = MESHES.get(ir.IntegerAttr(op.attributes["tessera.mesh"]).value)
        if found is not None:
            return found
    if default is not _CURRENT:
        return default
    from ..dist.context import current_mesh
    return current_mesh()


def _record(name, x, shape, attributes, mesh):
    from ..dist.context import current_mesh
    mesh = current_mesh() if mesh is None else mesh
    MESHES[id(mesh)] = mesh
    attrs = {k: (ir.StringAttr.get(v) if isinstance(v, str) else _i64(v)) for k, v in attributes.items()}
    attrs["tessera.mesh"] = _i64(id(mesh))
    return GraphTensor(_create(name, ttype(shape, x.dtype), [x.v], attrs), shape, x.dtype)


def _tensor(x):
    if x.shape is None:   # an MLIR scalar: the collectives move tensors
        from .ops import broadcast
        return broadcast(x, (1,))
    return x


def all_reduce(x, op, axis, size, mesh=None):
    x = _tensor(x)
    return _record("ts.all_reduce", x, x.shape, {"op": op, "axis": axis, "size": size}, mesh)


def all_gather(x, axis, dim, size, mesh=None):
    shape = list(x.shape)
    shape[dim] *= size
    return _record("ts.all_gather", x, tuple(shape), {"axis": axis, "dim": dim, "size": size}, mesh)


def reduce_scatter(x, op, axis, dim, size, mesh=None):
    shape = list(x.shape)
    shape[dim] //= size
    return _record("ts.reduce_scatter", x, tuple(shape), {"op": op, "axis": axis, "dim": dim, "size": size}, mesh)


def broadcast(x, axis, src, size, mesh=None):
    x = _tensor(x)
    return _record("ts.dist_broadcast", x, x.shape, {"axis": axis, "src": src, "size": size}, mesh)
