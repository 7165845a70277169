"""Compile-to-cubin artifacts that run without the compiler: `CompiledKernel.save(dir)` writes
them, `tessera.runtime.load(dir)` runs them through CuPy. No mlir import on this path."""
from __future__ import annotations

import json
import os

from ..errors import TesseraError

MANIFEST = "manifest.json"


def save(ck, directory) -> str:
    if "cubin" not in ck.asm:
        raise TesseraError(f"only GPU targets produce artifacts (this kernel is compiled for '{ck.target}')")
    os.makedirs(directory, exist_ok=True)
    for stage, text in ck.asm.items():
        mode = "wb" if isinstance(text, bytes) else "w"
        with open(os.path.join(directory, f"{ck.name}.{stage}"), mode) as f:
            f.write(text)
    meta = {k: v for k, v in ck.metadata.items() if isinstance(v, (str, int, float, bool, list, dict, type(None)))}
    manifest = {"format": 1, "kernel": ck.name, "target": ck.target, "cubin": f"{ck.name}.cubin", "metadata": meta}
    with open(os.path.join(directory, MANIFEST), "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
    return directory


class LoadedKernel:
    """A saved kernel: `k[grid](*gpu_arrays)` launches it through CuPy."""

    def __init__(self, directory):
        with open(os.path.join(directory, MANIFEST)) as f:
            self.manifest = json.load(f)
        self.name = self.manifest["kernel"]
        self.target = self.manifest["target"]
        self.metadata = self.manifest["metadata"]
        with open(os.path.join(directory, self.manifest["cubin"]), "rb") as f:
            self.cubin = f.read()
        self._launcher = None

    def launcher(self):
        if self._launcher is None:
            from .cuda import CudaLauncher
            m = self.metadata
            self._launcher = CudaLauncher(self.cubin, self.name, m["args"], m.get("shared_bytes", 0),
                                          m.get("num_warps", 4), m.get("tma", ()))
        return self._launcher

    def __getitem__(self, grid):
        grid = tuple(grid) if isinstance(grid, (tuple, list)) else (grid,)
        grid = grid + (1,) * (3 - len(grid))
        return lambda *args: self.launcher().launch(grid, args)


def load(directory) -> LoadedKernel:
    return LoadedKernel(directory)
