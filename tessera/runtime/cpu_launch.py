"""The launch ABI of a CPU-compiled kernel, shared by the two ways it runs: MLIR's ExecutionEngine (the
JIT, tessera.backends.cpu.runner) and a saved shared object loaded with ctypes (tessera.runtime.cpu_object).

Both call the same packed entry, `_mlir__mlir_ciface_<name>_grid(void **args)` (what the engine's `invoke`
calls): one pointer per kernel argument (to a pointer to a strided memref descriptor for tensors, to the
C value for scalars), then three pointers to the i64 grid sizes, then, when the kernel can record an integer fault (tessera-lower-tile-to-cpu's
`tessera.int_faults`), a pointer to a pointer to the descriptor of a 1-element i64 fault flag.
MLIR-free: a loaded plan packs its launches with this module without the compiler."""
from __future__ import annotations

import ctypes

import numpy as np

from ..errors import LaunchError
from .prepared import CPU_GRID_LIMITS, check_grid, check_scalar

SCALAR_C = {"index": ctypes.c_int64, "i64": ctypes.c_int64, "i32": ctypes.c_int32, "i16": ctypes.c_int16,
            "i8": ctypes.c_int8, "bool": ctypes.c_bool, "f32": ctypes.c_float, "f64": ctypes.c_double}
_DESC_TYPES: dict[int, type] = {}


def _desc_type(rank: int):
    if rank not in _DESC_TYPES:
        class Desc(ctypes.Structure):
            _fields_ = [("allocated", ctypes.c_void_p), ("aligned", ctypes.c_void_p), ("offset", ctypes.c_int64),
                        ("sizes", ctypes.c_int64 * rank), ("strides", ctypes.c_int64 * rank)]
        _DESC_TYPES[rank] = Desc
    return _DESC_TYPES[rank]


def memref_descriptor(a: np.ndarray):
    """A strided memref descriptor viewing `a` in place (any strides that are whole elements)."""
    item = a.itemsize
    if any(s % item for s in a.strides):
        raise LaunchError("array strides must be multiples of the element size")
    ptr = a.__array_interface__["data"][0]
    D = _desc_type(a.ndim)
    return D(ptr, ptr, 0, (ctypes.c_int64 * a.ndim)(*a.shape),
             (ctypes.c_int64 * a.ndim)(*[s // item for s in a.strides]))


class PackedEntryLauncher:
    """Packs arguments for a kernel's packed `<name>_grid` entry and reports its integer faults.
    Subclasses say how the entry is called (`_invoke(ptrs)`). `faults`: one (what, file, line, col) per
    fault code (code k is faults[k - 1]), so a LaunchError names the user's source line."""

    grid_limits = CPU_GRID_LIMITS

    def __init__(self, name: str, arg_abi: list[dict], faults):
        self.name, self.abi = name, arg_abi
        self.faults = [tuple(f) for f in faults]

    def _invoke(self, ptrs):
        raise NotImplementedError

    def _check_faults(self, flag):
        """After a launch: the first integer fault a program recorded, as a LaunchError at its division."""
        if flag is None or not flag[0]:
            return
        code, flag[0] = int(flag[0]), 0
        what, file, line, col = self.faults[code - 1]
        raise LaunchError(f"{what} in kernel '{self.name}' at run time: the launch ran to its end with the GPU's "
                          "results (x // 0 == -1, x % 0 == x, INT_MIN // -1 == INT_MIN) in its outputs",
                          file, line, col)

    def _pack(self, args):
        keep, ptrs = [], []
        for spec, a in zip(self.abi, args):
            if spec["kind"] == "tensor_list":   # its table, in host memory (runtime.tensor_list)
                from .tensor_list import table
                keep.append(a)
                a = table(spec, a)
            if spec["kind"] in ("tensor", "tensor_list"):
                d = memref_descriptor(a)
                p = ctypes.pointer(d)
                keep += [a, d, p]
                ptrs.append(ctypes.pointer(p))
            else:
                check_scalar(spec, a)
                c = SCALAR_C[spec["abi"]](a)
                keep.append(c)
                ptrs.append(ctypes.pointer(c))
        grid = [ctypes.c_int64(0) for _ in range(3)]
        ptrs += [ctypes.pointer(x) for x in grid]
        flag = None
        if self.faults:   # the kernel's integer fault flag follows the grid
            flag = np.zeros(1, np.int64)
            d = memref_descriptor(flag)
            p = ctypes.pointer(d)
            keep += [flag, d, p]
            ptrs.append(ctypes.pointer(p))
        return keep, ptrs, grid, flag

    def launch(self, grid, args):
        keep, ptrs, g, flag = self._pack(args)
        for slot, n in zip(g, check_grid(grid, CPU_GRID_LIMITS)):
            slot.value = n
        self._invoke(ptrs)
        del keep   # (the descriptors and arrays stay alive until the entry has returned)
        self._check_faults(flag)

    def prepare(self, grid, args):
        """The pointer array built once; a call only writes the grid into it."""
        from .prepared import PyPrepared
        keep, ptrs, g, flag = self._pack(args)
        invoke, check_faults = self._invoke, self._check_faults

        def run(grid3):
            for slot, n in zip(g, check_grid(grid3, CPU_GRID_LIMITS)):
                slot.value = n
            invoke(ptrs)
            check_faults(flag)
        return PyPrepared(run, tuple(grid), keep)
