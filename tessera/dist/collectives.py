"""Collectives over a mesh axis, on torch.distributed (DESIGN §14).

Every collective takes the array kinds tessera runs on and returns the kind it was given: NumPy in,
NumPy out (the collective runs on a torch tensor over the same memory: tessera.runtime.torch_interop,
bf16 included), torch in, torch out, CuPy in, CuPy out; inside an eagerly run @ts.function, an
EagerTensor in, an EagerTensor out. Inputs are never written. A traced tensor (a @ts.function being
compiled into one graph) records a ts collective op instead (tessera.graph.ops_dist: the current mesh
fixes the axis size); the compiled graph runs it through these same functions and differentiates it
(tessera.autodiff.vjp_collectives). shard and the pipeline's point to point still need concrete values:
a traced tensor there raises GraphBreak, so the function runs eagerly.

Before the data moves, the ranks of the axis exchange the input's shape and dtype (one small
all_gather), so a rank whose tensor differs is named in a DistributedError instead of corrupting the
result or hanging. 16-bit floats are reduced in f32 and rounded once, so a reduction's result does not
depend on the number of processes or their order. A world of 1 (no torchrun) runs every collective as
the identity it is, without torch.
"""
from __future__ import annotations

import numpy as np

from ..errors import DistributedError, GraphBreak
from .context import assigned_rank, current_mesh, last_stage

OPS = ("sum", "mean", "max", "min")
MAX_DIMS = 12


# -- array kinds ----------------------------------------------------------------------------------
def _to_torch(x, what):
    """(a torch tensor over x's data, a function turning a result tensor into x's kind)."""
    from ..frontend.eager import EagerTensor
    from ..frontend.function import GraphTensor, user_frame
    from ..runtime import torch_interop
    if isinstance(x, GraphTensor):
        raise GraphBreak(f"dist.{what} needs concrete values (it communicates with the other ranks): the "
                         "@ts.function runs eagerly", *user_frame())
    if isinstance(x, EagerTensor):
        t, back = _to_torch(x.a, what)
        return t, lambda r: EagerTensor(back(r))
    if torch_interop.is_torch(x):
        return x.detach(), lambda r: r
    if hasattr(x, "__cuda_array_interface__"):
        import cupy
        import torch
        return torch.from_dlpack(x), lambda r: cupy.from_dlpack(r)
    if isinstance(x, (np.ndarray, np.generic, int, float, bool)):
        a = np.asarray(x)
        return torch_interop.to_torch(a), torch_interop.host_view
    raise DistributedError(f"dist.{what} takes a NumPy array, a torch tensor or a CuPy array, got "
                           f"{type(x).__name__}")


def _traced(x):
    from ..frontend.function import GraphTensor
    return isinstance(x, GraphTensor)


def _local(x, what):
    """x in a world of 1 (the identity), with the traced-tensor check every collective makes."""
    from ..frontend.function import GraphTensor, user_frame
    if isinstance(x, GraphTensor):
        raise GraphBreak(f"dist.{what} needs concrete values: the @ts.function runs eagerly", *user_frame())
    return x


def _on_device(t, mesh):
    """t on the mesh's device, and the way back to t's own device."""
    import torch
    want = torch.device(mesh.device)
    if t.device == want:
        return t, lambda r: r
    home = t.device
    return t.to(want), lambda r: r.to(home)


def _dtype_code(t):
    import torch
    order = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int8, torch.int16, torch.int32,
             torch.int64, torch.uint8, torch.bool]
    return order.index(t.dtype) if t.dtype in order else 99


def _is_16bit_float(t):
    import torch
    return t.dtype in (torch.float16, torch.bfloat16)


# -- the guarded call -----------------------------------------------------------------------------
def _guarded(mesh, axis, what, fn):
    """Run one collective; a torch failure (a dead peer's closed connection, a timeout) becomes a
    DistributedError naming the failed rank (tessera.dist.faults)."""
    from .mesh import monitor
    m = monitor()
    m.collectives += 1
    m.current = what
    try:
        return fn()
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise m.diagnose(f"dist.{what} over axis {axis!r} failed ({first})",
                         group_ranks=mesh.axis_ranks(axis)) from None


def _agree(mesh, axis, t, what):
    """Every rank of the axis has the same shape and dtype (else a DistributedError naming them)."""
    import torch
    if t.dim() > MAX_DIMS:
        raise DistributedError(f"dist.{what}: tensors of more than {MAX_DIMS} dims are not supported "
                               f"(got {t.dim()})")
    row = [t.dim(), _dtype_code(t)] + list(t.shape) + [-1] * (MAX_DIMS - t.dim())
    mine = torch.tensor(row, dtype=torch.int64, device=mesh.device)
    n = mesh.size(axis)
    rows = torch.empty(n * len(row), dtype=torch.int64, device=mesh.device)
    _gather_dim0(rows, mine, mesh.group(axis))
    rows = rows.view(n, len(row)).cpu().tolist()
    if all(r == rows[0] for r in rows):
        return
    ranks = mesh.axis_ranks(axis)
    desc = "; ".join(f"rank {ranks[i]} (axis rank {i}): shape {r[2:2 + r[0]]} dtype code {r[1]}"
                     for i, r in enumerate(rows))
    raise DistributedError(f"dist.{what} over axis {axis!r}: the ranks' tensors differ ({desc}); every rank of "
                           "the axis must pass the same shape and dtype", ranks=ranks)


def _gather_dim0(out, t, group):
    """torch's gather-into-one-tensor (renamed all_gather_single in recent torch; the old name warns)."""
    import torch.distributed as tdist
    gather = getattr(tdist, "all_gather_single", None) or tdist.all_gather_into_tensor
    gather(out, t, group=group)


def _axis(mesh, axis, what):
    if axis is None:
        from .context import current_axis
        axis = current_axis()
        if axis is None:
            raise DistributedError(f"dist.{what}: give axis= (one of the mesh axes {mesh.axes}) or call it "
                                   "inside dist.tensor_parallel(axis)")
    mesh._index(axis)
    return axis


# -- collectives ----------------------------------------------------------------------------------
def all_reduce(x, op="sum", axis=None):
    """The elementwise `op` ("sum", "mean", "max", "min") of x over the ranks of `axis`, on every rank."""
    mesh = current_mesh()
    axis = _axis(mesh, axis, "all_reduce")
    if op not in OPS:
        raise DistributedError(f"dist.all_reduce: op must be one of {OPS}, got {op!r}")
    if _traced(x):
        from ..graph import ops_dist
        if op == "mean" and not x.dtype.is_float:
            raise DistributedError(f"dist.all_reduce(op='mean') of a {x.dtype.name} tensor: the mean of integers "
                                   "is not an integer; cast to a float dtype first")
        return ops_dist.all_reduce(x, op, axis, mesh.size(axis), mesh)
    if not mesh.distributed:
        return _local(x, "all_reduce")
    t, back = _to_torch(x, "all_reduce")
    if op == "mean" and not (t.is_floating_point()):
        raise DistributedError(f"dist.all_reduce(op='mean') of a {t.dtype} tensor: the mean of integers is not "
                               "an integer; cast to a float dtype first")
    t, home = _on_device(t, mesh)

    def run():
        import torch
        import torch.distributed as tdist
        _agree(mesh, axis, t, "all_reduce")
        work = t.to(torch.float32) if _is_16bit_float(t) else t.clone()
        reduce_op = {"sum": tdist.ReduceOp.SUM, "mean": tdist.ReduceOp.SUM, "max": tdist.ReduceOp.MAX,
                     "min": tdist.ReduceOp.MIN}[op]
        tdist.all_reduce(work, op=reduce_op, group=mesh.group(axis))
        if op == "mean":
            work = work / mesh.size(axis)
        return work.to(t.dtype)
    return back(home(_guarded(mesh, axis, "all_reduce", run)))


def all_gather(x, axis=None, dim=0):
    """The ranks' x of `axis` concatenated along `dim` in axis-rank order (every rank passes the same shape)."""
    mesh = current_mesh()
    axis = _axis(mesh, axis, "all_gather")
    if _traced(x):
        from ..graph import ops_dist
        dim = _check_dim_of_shape(tuple(x.shape or ()), dim, "all_gather")
        return ops_dist.all_gather(x, axis, dim, mesh.size(axis), mesh)
    if not mesh.distributed:
        return _local(x, "all_gather")
    t, back = _to_torch(x, "all_gather")
    dim = _check_dim(t, dim, "all_gather")
    t, home = _on_device(t, mesh)

    def run():
        import torch
        _agree(mesh, axis, t, "all_gather")
        front = t.movedim(dim, 0).contiguous()
        n = mesh.size(axis)
        out = torch.empty((n * front.shape[0],) + tuple(front.shape[1:]), dtype=t.dtype, device=t.device)
        _gather_dim0(out, front, mesh.group(axis))
        return out.movedim(0, dim).contiguous()
    return back(home(_guarded(mesh, axis, "all_gather", run)))


def reduce_scatter(x, op="sum", axis=None, dim=0):
    """The `op` of x over the ranks of `axis`, split along `dim` into equal parts: axis rank i gets part i
    (x.shape[dim] must divide by the axis size)."""
    mesh = current_mesh()
    axis = _axis(mesh, axis, "reduce_scatter")
    if op not in OPS:
        raise DistributedError(f"dist.reduce_scatter: op must be one of {OPS}, got {op!r}")
    n = mesh.size(axis)
    shape = tuple(getattr(x, "shape", ()))
    dim = _check_dim_of_shape(shape, dim, "reduce_scatter")
    if shape[dim] % n:
        raise DistributedError(f"dist.reduce_scatter over axis {axis!r} ({n} ranks): dim {dim} of shape "
                               f"{list(shape)} has {shape[dim]} elements, which do not split into {n} equal parts")
    if _traced(x):
        from ..graph import ops_dist
        return ops_dist.reduce_scatter(x, op, axis, dim, n, mesh)
    if not mesh.distributed:
        return _local(x, "reduce_scatter")
    reduced = all_reduce(x, op=op, axis=axis)     # gloo has no native reduce-scatter for every dtype: the
    part = shape[dim] // n                        # full reduction, then this rank's part (the same result)
    index = [slice(None)] * len(shape)
    r = mesh.rank(axis)
    index[dim] = slice(r * part, (r + 1) * part)
    from ..frontend.eager import EagerTensor
    if isinstance(reduced, EagerTensor):
        return EagerTensor(reduced.a[tuple(index)])
    return reduced[tuple(index)]


def broadcast(x, src=None, axis=None):
    """Rank `src`'s x (src: the rank within `axis`; default: the device_assignment rank, else 0) on every
    rank of the axis. The other ranks' x gives only the result's kind (its values and shape are ignored)."""
    mesh = current_mesh()
    axis = _axis(mesh, axis, "broadcast")
    if src is None:
        src = assigned_rank(axis)
        src = 0 if src is None else src
    n = mesh.size(axis)
    if not 0 <= src < n:
        raise DistributedError(f"dist.broadcast: src={src} is outside axis {axis!r} of size {n}")
    if _traced(x):
        from ..graph import ops_dist
        return ops_dist.broadcast(x, axis, src, n, mesh)
    if not mesh.distributed:
        return _local(x, "broadcast")
    t, back = _to_torch(x, "broadcast")
    t, home = _on_device(t, mesh)

    def run():
        import torch
        import torch.distributed as tdist
        group = mesh.group(axis)
        header = _header(t, mesh) if mesh.rank(axis) == src else torch.empty(2 + MAX_DIMS, dtype=torch.int64,
                                                                             device=mesh.device)
        tdist.broadcast(header, group=group, group_src=src)
        out = t.clone() if mesh.rank(axis) == src else _empty_from_header(header, mesh)
        tdist.broadcast(out, group=group, group_src=src)
        return out
    return back(home(_guarded(mesh, axis, "broadcast", run)))


def shard(x, axis=0, mesh_axis="dp"):
    """This rank's part of x split along array dim `axis` into equal parts over the ranks of `mesh_axis`
    (axis rank i gets part i; x.shape[axis] must divide by the axis size). No communication: every rank
    holds the whole x and takes its part (a view where the array kind allows)."""
    mesh = current_mesh()
    mesh._index(mesh_axis)
    x = _local(x, "shard")
    shape = tuple(getattr(x, "shape", ()))
    dim = _check_dim_of_shape(shape, axis, "shard")
    n = mesh.size(mesh_axis)
    if shape[dim] % n:
        raise DistributedError(f"dist.shard over mesh axis {mesh_axis!r} ({n} ranks): dim {dim} of shape "
                               f"{list(shape)} has {shape[dim]} elements, which do not split into {n} equal parts")
    part = shape[dim] // n
    r = mesh.rank(mesh_axis)
    index = [slice(None)] * len(shape)
    index[dim] = slice(r * part, (r + 1) * part)
    from ..frontend.eager import EagerTensor
    if isinstance(x, EagerTensor):
        return EagerTensor(x.a[tuple(index)])
    return x[tuple(index)]


def _check_dim(t, dim, what):
    return _check_dim_of_shape(tuple(t.shape), dim, what)


def _check_dim_of_shape(shape, dim, what):
    if not shape:
        raise DistributedError(f"dist.{what} needs a tensor with at least one dim, got a scalar")
    if not -len(shape) <= dim < len(shape):
        raise DistributedError(f"dist.{what}: dim {dim} is out of range for shape {list(shape)}")
    return dim % len(shape)


# -- point to point (pipeline stages) -------------------------------------------------------------
def _header(t, mesh):
    import torch
    row = [t.dim(), _dtype_code(t)] + list(t.shape) + [-1] * (MAX_DIMS - t.dim())
    return torch.tensor(row, dtype=torch.int64, device=mesh.device)


def _empty_from_header(header, mesh):
    import torch
    ndim, code, *dims = header.cpu().tolist()
    order = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int8, torch.int16, torch.int32,
             torch.int64, torch.uint8, torch.bool]
    if code >= len(order):
        raise DistributedError(f"dist: a peer sent a tensor of a dtype tessera.dist does not move (code {code})")
    return torch.empty(dims[:ndim], dtype=order[code], device=mesh.device)


def send(x, dst, axis="pp"):
    """Send x to rank `dst` of `axis` (which must call dist.recv(src=<this rank's axis rank>, axis=axis))."""
    mesh = current_mesh()
    mesh._index(axis)
    t, _ = _to_torch(x, "send")
    t, _ = _on_device(t, mesh)
    peer = mesh.global_rank(axis, dst)

    def run():
        import torch.distributed as tdist
        tdist.send(_header(t, mesh), dst=peer)
        tdist.send(t.contiguous(), dst=peer)
    _guarded(mesh, axis, "send", run)


def recv(src, axis="pp", like=None):
    """The tensor rank `src` of `axis` sends with dist.send; of `like`'s kind (default: NumPy on a CPU mesh,
    a torch tensor on a CUDA one)."""
    mesh = current_mesh()
    mesh._index(axis)
    peer = mesh.global_rank(axis, src)

    def run():
        import torch
        import torch.distributed as tdist
        header = torch.empty(2 + MAX_DIMS, dtype=torch.int64, device=mesh.device)
        tdist.recv(header, src=peer)
        out = _empty_from_header(header, mesh)
        tdist.recv(out, src=peer)
        return out
    out = _guarded(mesh, axis, "recv", run)
    if like is None:
        if out.is_cuda:
            return out
        from ..runtime.torch_interop import host_view
        return host_view(out)
    from ..runtime.torch_interop import is_torch
    _, back = _to_torch(like, "recv")
    if is_torch(like) and like.device != out.device:
        out = out.to(like.device)
    return back(out)


def send_to_next_stage(x, axis="pp", stage=None):
    """After `with dist.pipeline_stage(i):` blocks: the ranks of stage i send x to the rank of stage i+1 with
    the same other coordinates, and return x; the ranks of stage i+1 return what they received (in x's
    kind); every other rank returns x. `stage` overrides the last pipeline_stage's i."""
    mesh = current_mesh()
    stage = last_stage(axis) if stage is None else stage
    if axis not in mesh.axes or not mesh.distributed:   # one stage, or a world of 1: nothing moves
        return _local(x, "send_to_next_stage")
    here = mesh.rank(axis)
    if here == stage and stage + 1 < mesh.size(axis):
        send(x, stage + 1, axis=axis)
        return x
    if here == stage + 1:
        return recv(stage, axis=axis, like=x)
    return x
