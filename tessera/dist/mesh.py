"""`dist.mesh(...)`: the processes of a run as a named N-d grid, on torch.distributed (DESIGN §14).

The processes come from torchrun (or `tessera run --nproc N`, which runs torchrun): each reads RANK,
WORLD_SIZE, MASTER_ADDR and MASTER_PORT from its environment. The first mesh initialises torch's default
process group from that environment (gloo for CPU devices, NCCL for CUDA ones) with TESSERA_DIST_TIMEOUT,
then torch's DeviceMesh creates one process group per axis. A process started without torchrun is a
world of 1: a mesh whose shape multiplies to 1 works there (every collective is then the identity, and
torch is not even imported); any other shape is a DistributedError saying how to launch it.
"""
from __future__ import annotations

import atexit
import math
import os
from datetime import timedelta

from .. import knobs
from ..errors import DistributedError

_MESHES: dict = {}       # (axes, shape, devices) -> Mesh: every rank must create a mesh's groups once, together
_STATE = {"monitor": None, "default": None, "owns_group": False}


class Mesh:
    """Named axes over the processes of a run. `mesh.size(axis=None)` (the whole mesh when None),
    `mesh.rank(axis=None)` (this process's global rank, or its coordinate along `axis`), `mesh.axes`,
    `mesh.shape`, `mesh.device` (this process's device), `mesh.group(axis)` (the torch ProcessGroup)."""

    def __init__(self, axes, shape, device, device_mesh=None, rank=0):
        self.axes = tuple(axes)
        self.shape = tuple(shape)
        self.device = device
        self.device_mesh = device_mesh
        self._rank = rank
        self.coordinate = dict(zip(self.axes, _unravel(rank, self.shape)))

    def _index(self, axis):
        if axis not in self.axes:
            raise DistributedError(f"the mesh has no axis {axis!r}: its axes are {self.axes} (shape {self.shape})")
        return self.axes.index(axis)

    def size(self, axis=None) -> int:
        return math.prod(self.shape) if axis is None else self.shape[self._index(axis)]

    def rank(self, axis=None) -> int:
        return self._rank if axis is None else self.coordinate[self.axes[self._index(axis)]]

    @property
    def world_size(self) -> int:
        return math.prod(self.shape)

    @property
    def distributed(self) -> bool:
        """False for a world of 1 without torch.distributed (collectives are then the identity)."""
        return self.device_mesh is not None

    def group(self, axis):
        """The torch ProcessGroup of `axis` (None in a world of 1)."""
        self._index(axis)
        return None if self.device_mesh is None else self.device_mesh.get_group(axis)

    def global_rank(self, axis, axis_rank: int) -> int:
        """The global rank of the process at `axis_rank` along `axis` with this process's other coordinates."""
        i = self._index(axis)
        if not 0 <= axis_rank < self.shape[i]:
            raise DistributedError(f"rank {axis_rank} is outside axis {axis!r} of size {self.shape[i]} "
                                   f"(mesh axes {self.axes}, shape {self.shape})")
        coord = list(_unravel(self._rank, self.shape))
        coord[i] = axis_rank
        return _ravel(coord, self.shape)

    def axis_ranks(self, axis) -> list:
        """The global ranks along `axis` through this process, in axis order."""
        return [self.global_rank(axis, i) for i in range(self.size(axis))]

    def __repr__(self):
        dims = ", ".join(f"{a}={n}" for a, n in zip(self.axes, self.shape))
        return f"Mesh({dims}; rank {self._rank}, {self.device})"


def _unravel(rank, shape):
    coord = []
    for n in reversed(shape):
        coord.append(rank % n)
        rank //= n
    return tuple(reversed(coord))


def _ravel(coord, shape):
    r = 0
    for c, n in zip(coord, shape):
        r = r * n + c
    return r


def launched_world():
    """(rank, world size) from torchrun's environment; (0, 1) for a process started on its own."""
    if "WORLD_SIZE" not in os.environ or "RANK" not in os.environ:
        return 0, 1
    return int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])


def mesh(devices=None, axes=("dp",), shape=None) -> Mesh:
    """The mesh of this run's processes with named `axes` and `shape` (row-major: the last axis varies
    fastest over global ranks). `devices=None`: each process's own device (cuda:LOCAL_RANK when CUDA is
    available, else the CPU); `devices=[...]`: one entry per process, rank r runs on devices[r]
    ("cuda:i", or "cpu" / "cpu:i" — on CPUs a device names a process, all share the host's cores)."""
    axes = (axes,) if isinstance(axes, str) else tuple(axes)
    rank, world = launched_world()
    shape = (world,) * (len(axes) == 1) if shape is None else tuple(int(n) for n in shape)
    if len(shape) != len(axes):
        raise DistributedError(f"dist.mesh: {len(axes)} axes {axes} but a shape of {len(shape)} dims {shape}"
                               if shape else f"dist.mesh: give shape= for the {len(axes)} axes {axes}")
    if len(set(axes)) != len(axes) or not all(isinstance(a, str) and a for a in axes):
        raise DistributedError(f"dist.mesh: axis names must be distinct non-empty strings, got {axes}")
    if any(n < 1 for n in shape):
        raise DistributedError(f"dist.mesh: every axis needs at least 1 process, got shape {shape}")
    need = math.prod(shape)
    if need != world:
        how = (f"launch it with `tessera run --nproc {need} script.py` or `torchrun --nproc-per-node {need} "
               "script.py`")
        where = "a single process (not started by torchrun)" if world == 1 else f"{world} processes"
        raise DistributedError(f"dist.mesh over axes {axes} with shape {shape} needs {need} processes, but this "
                               f"run has {where}: {how}")
    if devices is not None:
        devices = [str(d) for d in devices]
        if len(devices) != world:
            raise DistributedError(f"dist.mesh: {len(devices)} devices given for a run of {world} processes "
                                   f"(mesh shape {shape}): give one device per process, or devices=None")
    key = (axes, shape, None if devices is None else tuple(devices))
    if key in _MESHES:
        m = _MESHES[key]
    elif world == 1:
        device = devices[0] if devices else "cpu"
        _check_device_kinds([device], cuda_available=None)
        m = Mesh(axes, shape, device)
    else:
        m = _distributed_mesh(axes, shape, devices, rank, world)
    _MESHES[key] = m
    _STATE["default"] = m
    return m


def _check_device_kinds(devices, cuda_available):
    kinds = {d.split(":")[0] for d in devices}
    if not kinds <= {"cpu", "cuda"}:
        raise DistributedError(f"dist.mesh: devices must be 'cpu', 'cpu:i' or 'cuda:i', got {sorted(set(devices))}")
    if len(kinds) > 1:
        raise DistributedError("dist.mesh: a mesh runs on CPUs (gloo) or on CUDA GPUs (NCCL), not both: "
                               f"got {sorted(set(devices))}")
    if "cuda" in kinds and cuda_available is False:
        raise DistributedError(f"dist.mesh: devices {devices[:2]}... are CUDA GPUs but this machine has none "
                               "(torch.cuda.is_available() is False): use devices=None or 'cpu' devices")


def _distributed_mesh(axes, shape, devices, rank, world):
    import torch
    import torch.distributed as tdist
    from torch.distributed.device_mesh import init_device_mesh
    cuda = torch.cuda.is_available()
    if devices is None:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        device = f"cuda:{local}" if cuda else "cpu"
    else:
        _check_device_kinds(devices, cuda)
        device = devices[rank]
    kind = device.split(":")[0]
    backend = "nccl" if kind == "cuda" else "gloo"
    if kind == "cuda":
        torch.cuda.set_device(torch.device(device))
    timeout = knobs.dist_timeout()
    if not tdist.is_initialized():
        try:
            tdist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout))
        except Exception as e:   # noqa: BLE001 - the rendezvous (a peer never came, a bad address)
            raise DistributedError(f"rank {rank}: the process group of {world} processes could not be set up "
                                   f"within {timeout:g} s (TESSERA_DIST_TIMEOUT): {type(e).__name__}: {e}") from None
        _STATE["owns_group"] = True
        atexit.register(_shutdown)
    if _STATE["monitor"] is None:
        from .faults import Monitor
        _STATE["monitor"] = Monitor(rank, world, os.environ.get("MASTER_ADDR", "127.0.0.1"),
                                    int(os.environ.get("MASTER_PORT", "29500")), timeout)
    options = _group_options(backend, timeout)
    override = {a: (backend, options) for a in axes}
    monitor = _STATE["monitor"]
    monitor.collectives += 1   # creating the groups is collective: peers count it like one
    try:
        device_mesh = init_device_mesh(kind, shape, mesh_dim_names=axes, backend_override=override)
    except (RuntimeError, ValueError) as e:
        raise monitor.diagnose(f"creating the process groups of mesh {axes} {shape} failed: {e}") from None
    return Mesh(axes, shape, device, device_mesh, rank)


def _group_options(backend, timeout):
    """Process-group options carrying the timeout (DeviceMesh's groups otherwise wait torch's 30 min)."""
    import torch.distributed as tdist
    if backend == "nccl":
        options = tdist.ProcessGroupNCCL.Options()
    else:
        options = tdist.ProcessGroupGloo._Options()
    options._timeout = timedelta(seconds=timeout)
    return options


def monitor():
    return _STATE["monitor"]


def default_mesh():
    return _STATE["default"]


def _shutdown():
    """At exit: tell the peers this rank finished, then tear the process groups down (a clean run exits 0)."""
    import torch.distributed as tdist
    m = _STATE["monitor"]
    if m is not None:
        m._at_exit()
    if _STATE["owns_group"] and tdist.is_initialized():
        try:
            tdist.destroy_process_group()
        except Exception:   # noqa: BLE001 - a group broken by a failed peer: the process is ending anyway
            pass
