"""Compiled-kernel artifacts that run without the compiler: `CompiledKernel.save(dir)` writes them (a cubin
for GPU targets, here; a shared object for "cpu", tessera.backends.cpu.aot), `tessera.runtime.load(dir)`
runs them: cubins through the native launcher (CuPy's where it cannot load), shared objects through ctypes
(tessera.runtime.cpu_object). No mlir import on this path."""
from __future__ import annotations

import json
import os

from .. import knobs
from ..errors import TesseraError
from .prepared import PreparedLaunch, grid3

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
    """A saved kernel: `k[grid](*gpu_arrays)` launches it."""

    def __init__(self, directory):
        with open(os.path.join(directory, MANIFEST)) as f:
            self.manifest = json.load(f)
        self.name = self.__name__ = self.manifest["kernel"]
        self.target = self.manifest["target"]
        self.metadata = self.manifest["metadata"]
        with open(os.path.join(directory, self.manifest["cubin"]), "rb") as f:
            self.cubin = f.read()
        self.asm = {"cubin": self.cubin}
        ptx = os.path.join(directory, f"{self.name}.ptx")
        if os.path.isfile(ptx):
            with open(ptx) as f:
                self.asm["ptx"] = f.read()
        self._launcher = None

    def launcher(self):
        if self._launcher is None and knobs.backend() == "emu" and "ptx" in self.asm:
            # the PTX emulator on NumPy arrays (DESIGN §11): a saved GPU kernel checked without a GPU
            from .emulator import EmulatorLauncher
            self._launcher = EmulatorLauncher(self)
        if self._launcher is None:
            from .prepared import launcher_for
            self._launcher = launcher_for(self.cubin, self.name, self.metadata)
        return self._launcher

    def __getitem__(self, grid):
        g = grid3(grid)
        return lambda *args: self.launcher().launch(g, args)

    def prepare(self, *args, grid=None):
        """A launch packed once (see tessera.runtime.prepared)."""
        g = None if grid is None else grid3(grid)
        return PreparedLaunch(self.name, self.launcher(), args, g)


def read_manifest(directory) -> dict:
    path = os.path.join(directory, MANIFEST)
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise TesseraError(f"{directory} is not a saved kernel ({MANIFEST}: {e})") from None


def load(directory):
    """A saved kernel, launched as `k[grid](*arrays)`: CuPy arrays for a cubin, NumPy arrays for a CPU object."""
    manifest = read_manifest(directory)
    if manifest.get("target") == "cpu":
        from .cpu_object import LoadedCpuKernel
        return LoadedCpuKernel(directory, manifest)
    return LoadedKernel(directory)
