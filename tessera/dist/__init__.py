"""tessera.dist: meshes of processes and collectives over named axes, on torch.distributed (DESIGN §14;
docs/distributed.md). Importing it does not import torch: the first mesh of more than one process does.

    from tessera import dist
    mesh = dist.mesh(axes=("dp", "tp"), shape=(2, 2))      # run with `tessera run --nproc 4 script.py`
    y = dist.all_reduce(x, op="sum", axis="dp")
"""
from __future__ import annotations

from .mesh import Mesh, mesh  # noqa: F401
from .collectives import (all_reduce, all_gather, reduce_scatter, broadcast, shard, send, recv,  # noqa: F401
                          send_to_next_stage)
from .context import (tensor_parallel, device_assignment, pipeline_stage, distribute, current_mesh,  # noqa: F401
                      current_axis, assigned_rank, is_assigned_rank)
from ..errors import DistributedError  # noqa: F401

__all__ = ["Mesh", "mesh", "all_reduce", "all_gather", "reduce_scatter", "broadcast", "shard", "send", "recv",
           "send_to_next_stage", "tensor_parallel", "device_assignment", "pipeline_stage", "distribute",
           "current_mesh", "current_axis", "assigned_rank", "is_assigned_rank", "DistributedError"]
