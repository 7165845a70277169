"""Persistent launches (`persistent=True`, NVIDIA): the kernel runs on at most one CTA per SM, and each
CTA loops over the programs of the grid the caller asked for (CTA c runs programs c, c + CTAs, ...).

The compiled kernel takes the caller's grid as three trailing i64 parameters (`HIDDEN`, in the ABI
after the user's arguments, before TMA descriptors); `launch_shape` turns a launch of the caller's
grid into the persistent one. Every launcher applies it (`PersistentLauncher` wraps the native and
CuPy ones; the PTX emulator calls it itself), so `kernel[grid](...)`, prepared launches and
compile-to-cubin artifacts all launch the same way. MLIR-free."""
from __future__ import annotations

import ctypes

from .. import knobs
from ..errors import LaunchError
from .prepared import CUDA_GRID_LIMITS, check_grid

HIDDEN = [{"kind": "scalar", "name": f"__programs_{axis}", "abi": "i64", "hidden": True} for axis in "xyz"]
EMULATED_SMS = 132          # the PTX emulator stands for an H100 SXM unless TESSERA_PERSISTENT_CTAS says
_SMS: dict = {}


def device_sms() -> int:
    """Multiprocessors of the current CUDA device (CuPy where it is imported, else libcuda)."""
    try:
        import cupy as cp
        index = cp.cuda.runtime.getDevice()
        if index not in _SMS:
            _SMS[index] = int(cp.cuda.Device(index).attributes["MultiProcessorCount"])
        return _SMS[index]
    except ImportError:
        pass
    if "libcuda" not in _SMS:
        lib = ctypes.CDLL("libcuda.so.1")
        n, dev = ctypes.c_int(0), ctypes.c_int(0)
        if lib.cuInit(0) or lib.cuDeviceGet(ctypes.byref(dev), 0) or \
                lib.cuDeviceGetAttribute(ctypes.byref(n), 16, dev):   # CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT
            raise LaunchError("persistent launch: cannot read the device's multiprocessor count")
        _SMS["libcuda"] = n.value
    return _SMS["libcuda"]


def resident_ctas(emulated: bool = False) -> int:
    n = knobs.persistent_ctas()
    if n is not None:
        return n
    return EMULATED_SMS if emulated else device_sms()


def launch_shape(grid, args, ctas: int):
    """(launch grid, arguments) of a persistent launch of the caller's 3-D `grid` on `ctas` CTAs."""
    grid = check_grid(grid, CUDA_GRID_LIMITS)
    total = grid[0] * grid[1] * grid[2]
    if total >= 2 ** 31:
        raise LaunchError(f"persistent launch: grid {grid} has {total} programs, more than 2^31 - 1")
    return (max(1, min(total, ctas)), 1, 1), tuple(args) + grid


class PersistentLauncher:
    """A launcher (native or CuPy) of a kernel compiled with persistent=True, launched on the caller's grid."""

    def __init__(self, inner):
        self.inner = inner

    def launch(self, grid, args):
        shape, full = launch_shape(grid, args, resident_ctas())
        self.inner.launch(shape, full)

    def prepare(self, grid, args):
        return _Prepared(self.inner, tuple(grid), tuple(args))


class _Prepared:
    """The prepared-launch handle protocol (`h()`, `h.grid`, `h.set_grid(g)`): the caller's grid is
    in the packed arguments, so a new grid prepares the launch again."""

    def __init__(self, inner, grid, args):
        self._inner, self._args = inner, args
        self.set_grid(grid)

    def set_grid(self, grid):
        self.grid = tuple(grid)
        shape, full = launch_shape(self.grid, self._args, resident_ctas())
        self.keep = self._handle = self._inner.prepare(shape, full)

    def __call__(self):
        self._handle()
