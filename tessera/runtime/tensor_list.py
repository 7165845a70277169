"""`list[tile.Tensor]` arguments at launch (MLIR-free): the table every launcher writes.

A kernel parameter of kind "tensor_list" (its ABI entry carries dtype, rank and length) is passed as one
rank-2 int64 tensor, the table: row i is element i's address, its sizes and its strides in elements
(tessera-lower-tensor-lists reads it). On NVIDIA the table lives in device memory and holds device
addresses; on the CPU it is a NumPy array of host addresses; the emulator places it in its own memory.
"""
from __future__ import annotations

import numpy as np

from ..errors import LaunchError


def address(a) -> int:
    """The address of an array's first element: host for NumPy, device for CuPy / torch / emulator arrays."""
    if isinstance(a, np.ndarray):
        return a.__array_interface__["data"][0]
    return int(a.data.ptr)


def check_elements(spec, arrays):
    """The list a kernel was compiled for: its length, and one rank for every element."""
    if not isinstance(arrays, (list, tuple)):
        raise LaunchError(f"argument '{spec['name']}' must be a list of arrays, got {type(arrays).__name__}")
    if len(arrays) != spec["length"]:
        raise LaunchError(f"argument '{spec['name']}': this compiled kernel takes a list of {spec['length']} "
                          f"tensors, got {len(arrays)}; launch the kernel itself (it compiles one per length)")
    for i, a in enumerate(arrays):
        if len(a.shape) != spec["rank"]:
            raise LaunchError(f"argument '{spec['name']}[{i}]': expected rank {spec['rank']}, got {len(a.shape)}")


def table(spec, arrays) -> np.ndarray:
    """The host copy of a list's table (addresses as `address` gives them)."""
    check_elements(spec, arrays)
    rank = spec["rank"]
    out = np.zeros((len(arrays), 1 + 2 * rank), np.int64)
    for i, a in enumerate(arrays):
        item = a.itemsize
        if any(s % item for s in a.strides):
            raise LaunchError(f"argument '{spec['name']}[{i}]': strides must be whole elements")
        if spec.get("index32"):
            from .cuda import small_tensor
            if not small_tensor(a.shape, a.strides, item):
                raise LaunchError(f"argument '{spec['name']}[{i}]': this compiled kernel computes indices in 32 bits, "
                                  "which needs sizes, strides and offsets within 2^30; launch the kernel itself")
        out[i, 0] = address(a)
        out[i, 1:1 + rank] = a.shape
        out[i, 1 + rank:] = [s // item for s in a.strides]
    return out


def table_key(arrays):
    """What a device table depends on: a launcher reuses the table it wrote for the same arrays."""
    return tuple((address(a), tuple(a.shape), tuple(a.strides)) for a in arrays)


class DeviceTable:
    """A table in device memory seen as a device array (data.ptr, shape, strides, itemsize) by the packers."""

    class _Data:
        def __init__(self, ptr):
            self.ptr = ptr

    def __init__(self, buffer, host):
        self.buffer = buffer   # keeps the device allocation alive
        self.data = self._Data(int(buffer.ptr) if hasattr(buffer, "ptr") else int(buffer.data.ptr))
        self.shape, self.strides, self.itemsize, self.dtype = host.shape, host.strides, host.itemsize, host.dtype
        self.ndim = 2


class TableCache:
    """Device tables by the arrays they describe (a handful per launcher; older ones are dropped)."""

    def __init__(self, upload, limit=64):
        self.upload, self.limit, self.tables = upload, limit, {}

    def get(self, spec, arrays):
        key = (spec["name"], table_key(arrays))
        t = self.tables.get(key)
        if t is None:
            host = table(spec, arrays)
            if len(self.tables) >= self.limit:
                self.tables.pop(next(iter(self.tables)))
            t = self.tables[key] = DeviceTable(self.upload(host), host)
        return t
