"""Prepared launches (`k.prepare(*args)`): arguments checked and packed into the launcher's buffer
once, so a repeated launch costs only the driver call. Every launcher (CPU runner, native, CuPy)
implements `prepare(grid, args) -> handle` with `handle(grid3 or None)`. MLIR-free."""
from __future__ import annotations

import numbers

import numpy as np

from ..errors import LaunchError


def launcher_for(cubin: bytes, name: str, meta: dict):
    """The GPU launcher for a kernel's cubin and metadata (native where it loads, else CuPy)."""
    from .native import make_launcher
    launcher = make_launcher(cubin, name, meta["args"], meta.get("shared_bytes", 0), meta.get("num_warps", 4),
                             meta.get("tma", ()), tuple(meta.get("cluster", (1, 1, 1))), meta.get("static_smem", 0))
    if meta.get("persistent"):
        from .persistent import PersistentLauncher
        launcher = PersistentLauncher(launcher)
    return launcher


def read_only_output(meta, args):
    """The name of the first argument the kernel writes that is a read-only NumPy array (a read-only
    np.memmap included; `xs[k]` for an element of a list), else None."""
    abi = meta.get("args", ())
    for i in meta.get("writes", ()):
        a = args[i] if i < len(args) else None
        name = abi[i]["name"] if i < len(abi) else f"#{i}"
        for k, x in (enumerate(a) if isinstance(a, (list, tuple)) else [(None, a)]):
            if isinstance(x, np.ndarray) and not x.flags.writeable:
                return name if k is None else f"{name}[{k}]"
    return None


def read_only_message(name):
    return f"argument '{name}' is a read-only array and the kernel stores to it; pass a writable array (e.g. a copy)"


def check_writable(meta, args):
    name = read_only_output(meta, args)
    if name is not None:
        raise LaunchError(read_only_message(name))


def grid3(grid):
    grid = tuple(grid) if isinstance(grid, (tuple, list)) else (grid,)
    if not 1 <= len(grid) <= 3 or any(not isinstance(g, numbers.Integral) or isinstance(g, bool) or g < 0 for g in grid):
        raise LaunchError(f"grid must be 1 to 3 non-negative ints, got {grid}")
    return tuple(int(g) for g in grid) + (1,) * (3 - len(grid))


CPU_GRID_LIMITS = (2 ** 63 - 1,) * 3              # the CPU runner's program loops count in i64
CUDA_GRID_LIMITS = (2 ** 31 - 1, 65535, 65535)    # cuLaunchKernel's gridDim.x, .y, .z


def grid_limits(target: str):
    return CPU_GRID_LIMITS if target == "cpu" else CUDA_GRID_LIMITS


def check_grid(grid, limits):
    """A grid within a backend's limits, else a LaunchError naming the axis (ctypes and the driver
    would wrap a larger one silently or refuse it with a raw error)."""
    for axis, (n, most) in enumerate(zip(grid, limits)):
        if int(n) > most:
            raise LaunchError(f"grid dim {axis} is {n}, more than this backend launches on axis {axis} ({most})")
    return tuple(int(n) for n in grid)


_INT_BITS = {"index": 64, "i64": 64, "i32": 32, "i16": 16, "i8": 8}


def check_scalar(spec, value):
    """An integer argument fits the type its parameter declares (`int` is i64), else a LaunchError naming it:
    ctypes wraps silently, NumPy and the native packer raise without the argument's name. Every launcher
    runs this on every scalar."""
    bits = _INT_BITS.get(spec.get("dtype"))
    if bits is None:
        return
    name = "i64" if spec["dtype"] == "index" else spec["dtype"]
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise LaunchError(f"argument '{spec['name']}' must be an int ({name}), got {type(value).__name__}")
    msg = out_of_range(spec["name"], value, bits, name)
    if msg is not None:
        raise LaunchError(msg)


def out_of_range(arg, value, bits, type_name):
    """The error message for an integer argument outside a `bits`-wide signed type, else None."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if lo <= int(value) <= hi:
        return None
    return f"argument '{arg}' is {value}, which does not fit {type_name} ({lo} to {hi})"


class PyPrepared:
    """The handle protocol of the native `Prepared` for launchers written in Python: `h()` launches
    on the current grid, `h.set_grid(g)` changes it."""

    def __init__(self, run, grid, keep):
        self._run, self.grid, self.keep = run, grid, keep

    def __call__(self):
        self._run(self.grid)

    def set_grid(self, grid):
        self.grid = tuple(grid)


class PreparedLaunch:
    """`h()` launches on the grid given to prepare; `h(grid)` on another grid (same arguments).
    The launcher's handle is made on the first grid known, and kept."""

    def __init__(self, name, runner, args, grid):
        self.name, self._runner, self._args = name, runner, args
        self.grid, self._handle = None, None
        if grid is not None:
            self._set(grid)

    def _set(self, grid):
        check_grid(grid, getattr(self._runner, "grid_limits", CUDA_GRID_LIMITS))
        self.grid = grid
        if 0 in grid:  # an empty grid launches nothing (and the driver rejects it)
            return
        try:
            if self._handle is None:
                self._handle = self._runner.prepare(grid, self._args)
            elif grid != self._handle.grid:
                self._handle.set_grid(grid)
        except ValueError as e:  # e.g. a grid that is not a whole number of clusters
            raise LaunchError(f"{self.name}: {e}") from None

    def __call__(self, grid=None):
        try:
            self._launch(grid)
        except LaunchError as e:
            if e.filename is not None:   # a fault inside the kernel, located at its division
                raise
            from ..frontend.function import user_frame   # MLIR-free: the handle's call is the user's line
            raise LaunchError(e.msg, *user_frame()) from None

    def _launch(self, grid):
        if grid is not None:
            self._set(grid3(grid))
        elif self.grid is None:
            raise LaunchError(f"{self.name}: no grid: prepare(*args, grid=...) or call the handle with one")
        if 0 in self.grid:
            return
        try:
            self._handle()
        except (RuntimeError, ValueError, OverflowError) as e:  # the native module's CudaError is a RuntimeError
            raise LaunchError(f"{self.name}: {e}") from None

    def __repr__(self):
        return f"<PreparedLaunch {self.name} grid={self.grid}>"
