"""Where a piece of a program runs on the mesh: `@ts.distribute`, `tensor_parallel`, `device_assignment`,
`pipeline_stage` (DESIGN §14).

- `@ts.distribute(mesh=m)` on a function makes `m` the current mesh while it runs; on a class, while
  each of its methods runs, and `m` is passed to `__init__` when it takes a `mesh` parameter (seed 000).
- `tensor_parallel(axis)`: `axis` is the current axis of the block (device_assignment's default axis).
- `device_assignment(r, axis=None)`: the block's work is assigned to rank `r` of the axis (the current
  tensor_parallel axis, else the mesh's last axis). The block runs on EVERY rank of the axis: Python
  cannot skip a block whose names the code after it reads (seed 001 reads `delta_contrib` right after
  the block on all ranks), so every rank computes the same value a single process would. Inside it,
  `dist.is_assigned_rank()` is True on rank r only (to do rank-r-only work explicitly) and
  `dist.broadcast(x)` without src= takes rank r's value.
- `pipeline_stage(i, axis="pp")`: the block runs only on the ranks whose coordinate along the pipeline
  axis is i; the other ranks skip it (their names keep the values from before the block).
  `send_to_next_stage(x)` after it moves x from stage i's ranks to stage i+1's.
"""
from __future__ import annotations

import functools
import inspect
import sys

from ..errors import DistributedError

_MESHES: list = []        # @ts.distribute meshes, innermost last
_AXES: list = []          # tensor_parallel axes, innermost last
_ASSIGNED: list = []      # (axis, rank) of the open device_assignment blocks
_STAGE: dict = {}         # pipeline axis -> the stage of the last pipeline_stage block (send_to_next_stage's)


def current_mesh():
    """The innermost @ts.distribute mesh, else the last mesh dist.mesh(...) made."""
    if _MESHES:
        return _MESHES[-1]
    from .mesh import default_mesh
    m = default_mesh()
    if m is None:
        raise DistributedError("no mesh: create one with dist.mesh(axes=..., shape=...) before a collective")
    return m


def current_axis():
    """The innermost tensor_parallel axis, or None."""
    return _AXES[-1] if _AXES else None


def _default_axis(mesh):
    return current_axis() or mesh.axes[-1]


class tensor_parallel:
    """`with dist.tensor_parallel("tp"):` the block's current axis is "tp"."""

    def __init__(self, axis):
        current_mesh()._index(axis)
        self.axis = axis

    def __enter__(self):
        _AXES.append(self.axis)
        return self

    def __exit__(self, *exc):
        _AXES.pop()
        return False


class device_assignment:
    """`with dist.device_assignment(r):` the block's work belongs to rank r of the current axis; the block
    runs on every rank (see the module docstring), `dist.is_assigned_rank()` says whether this is rank r."""

    def __init__(self, rank, axis=None):
        mesh = current_mesh()
        self.axis = axis or _default_axis(mesh)
        n = mesh.size(self.axis)
        if not 0 <= int(rank) < n:
            raise DistributedError(f"device_assignment({rank}): axis {self.axis!r} has ranks 0..{n - 1} "
                                   f"(mesh axes {mesh.axes}, shape {mesh.shape})")
        self.rank = int(rank)

    def __enter__(self):
        _ASSIGNED.append((self.axis, self.rank))
        return self

    def __exit__(self, *exc):
        _ASSIGNED.pop()
        return False


def assigned_rank(axis=None):
    """The rank of the innermost device_assignment block (on `axis` if given), or None outside one."""
    for a, r in reversed(_ASSIGNED):
        if axis is None or a == axis:
            return r
    return None


def is_assigned_rank() -> bool:
    """True outside device_assignment blocks, and inside one on the assigned rank only."""
    if not _ASSIGNED:
        return True
    axis, rank = _ASSIGNED[-1]
    return current_mesh().rank(axis) == rank


class _SkipBlock(Exception):
    """Raised at the first line of a pipeline_stage block on ranks outside the stage; its __exit__ eats it."""


class pipeline_stage:
    """`with dist.pipeline_stage(i):` the block runs on the ranks of pipeline stage i only (coordinate i
    along `axis`, "pp" by default); elsewhere it is skipped. A world without that axis is one stage (0)."""

    def __init__(self, stage, axis="pp"):
        mesh = current_mesh()
        size = mesh.size(axis) if axis in mesh.axes else 1
        if not 0 <= int(stage) < size:
            raise DistributedError(f"pipeline_stage({stage}): axis {axis!r} has {size} stage(s) "
                                   f"(mesh axes {mesh.axes}, shape {mesh.shape})")
        self.stage, self.axis = int(stage), axis
        here = mesh.rank(axis) if axis in mesh.axes else 0
        self.runs_here = here == self.stage

    def __enter__(self):
        _STAGE[self.axis] = self.stage
        if not self.runs_here:
            # Skipping a with-body: a trace function on the caller's frame raises at the body's first
            # line and __exit__ swallows that exception (the only way Python lets a block be skipped).
            self._saved_trace = sys.gettrace()
            sys.settrace(lambda *args: None)
            self._frame = sys._getframe(1)
            self._frame.f_trace = self._skip
        return self

    def _skip(self, frame, event, arg):
        raise _SkipBlock()

    def __exit__(self, kind, value, tb):
        if not self.runs_here:
            self._frame.f_trace = None
            sys.settrace(self._saved_trace)
            del self._frame
            return kind is _SkipBlock
        return False


def last_stage(axis):
    if axis not in _STAGE:
        raise DistributedError(f"send_to_next_stage: no `with dist.pipeline_stage(i, axis={axis!r})` block ran "
                               "before it, so the sending stage is not known (pass stage=)")
    return _STAGE[axis]


def distribute(mesh=None):
    """`@ts.distribute(mesh=m)` on a function or a class: `m` is the current mesh while it runs (None: the
    mesh current at call time). On a class, `__init__` gets `mesh=m` when it has a `mesh` parameter."""
    def bind(fn):
        @functools.wraps(fn)
        def run_on_mesh(*args, **kwargs):
            _MESHES.append(mesh if mesh is not None else current_mesh())
            try:
                return fn(*args, **kwargs)
            finally:
                _MESHES.pop()
        return run_on_mesh

    def decorate(target):
        if not isinstance(target, type):
            if not callable(target):
                raise DistributedError(f"@ts.distribute decorates a function or a class, got {target!r}")
            return bind(target)
        init = target.__dict__.get("__init__")
        for name, member in list(target.__dict__.items()):
            if inspect.isfunction(member) and (not name.startswith("__") or name == "__call__"):
                setattr(target, name, bind(member))
        if init is not None and "mesh" in inspect.signature(init).parameters:
            bound_init = bind(init)

            @functools.wraps(init)
            def __init__(self, *args, **kwargs):
                if "mesh" not in kwargs and len(args) <= _position(init, "mesh"):
                    kwargs["mesh"] = mesh if mesh is not None else current_mesh()
                bound_init(self, *args, **kwargs)
            target.__init__ = __init__
        elif init is not None:
            target.__init__ = bind(init)
        return target
    return decorate


def _position(fn, name):
    """How many positional arguments (self excluded) come before parameter `name`."""
    params = list(inspect.signature(fn).parameters)
    return params.index(name) - 1
