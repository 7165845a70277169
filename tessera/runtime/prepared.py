"""Prepared launches (`k.prepare(*args)`): arguments checked and packed into the launcher's buffer
once, so a repeated launch costs only the driver call. Every launcher (CPU runner, native, CuPy)
implements `prepare(grid, args) -> handle` with `handle(grid3 or None)`. MLIR-free."""
from __future__ import annotations

import numbers

from ..errors import LaunchError


def launcher_for(cubin: bytes, name: str, meta: dict):
    """The GPU launcher for a kernel's cubin and metadata (native where it loads, else CuPy)."""
    from .native import make_launcher
    return make_launcher(cubin, name, meta["args"], meta.get("shared_bytes", 0), meta.get("num_warps", 4),
                         meta.get("tma", ()), tuple(meta.get("cluster", (1, 1, 1))))


def grid3(grid):
    grid = tuple(grid) if isinstance(grid, (tuple, list)) else (grid,)
    if not 1 <= len(grid) <= 3 or any(not isinstance(g, numbers.Integral) or isinstance(g, bool) or g < 0 for g in grid):
        raise LaunchError(f"grid must be 1 to 3 non-negative ints, got {grid}")
    return tuple(int(g) for g in grid) + (1,) * (3 - len(grid))


class PreparedLaunch:
    """`h()` launches on the grid given to prepare; `h(grid)` on another grid (same arguments)."""

    def __init__(self, name, handle, grid):
        self.name, self._handle, self.grid = name, handle, grid

    def __call__(self, grid=None):
        g = self.grid if grid is None else grid3(grid)
        if g is None:
            raise LaunchError(f"{self.name}: no grid: prepare(*args, grid=...) or call the handle with one")
        if 0 in g:
            return
        self._handle(g)

    def __repr__(self):
        return f"<PreparedLaunch {self.name} grid={self.grid}>"
