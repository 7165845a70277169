"""A CPU kernel saved as a shared object (tessera.backends.cpu.aot writes it), run without MLIR: the .so is
opened with ctypes and its packed `_mlir__mlir_ciface_<name>_range` entry (the manifest's `range_entry`) called
with the same pointer arrays the JIT's gets, split over the same threads (tessera.runtime.cpu_launch). A plan
saved by an older tessera names only `entry`, the whole-grid `_grid` one, which runs on one thread. The
artifact's manifest.json carries the argument ABI, the integer-fault sites (so a LaunchError still names the
user's file:line) and the ISA extensions of the machine that generated the code (LLVM compiled it for that
host's CPU)."""
from __future__ import annotations

import ctypes
import os
import platform

import numpy as np

from ..errors import LaunchError, TesseraError
from .cpu_launch import PackedEntryLauncher
from .prepared import check_writable, grid3

# ISA extensions LLVM may use when it compiles for the host CPU: code built where one is present raises
# SIGILL where it is absent, so a loader without one refuses the object instead.
ISA_FLAGS = ("sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c", "bmi1", "bmi2", "avx512f", "avx512dq",
             "avx512bw", "avx512vl", "avx512cd", "avx512_bf16", "avx512_fp16", "avx512_vnni", "amx_tile",
             "asimd", "sve")


def host_isa() -> list[str]:
    """The ISA_FLAGS this machine's CPU has (from /proc/cpuinfo; [] where it cannot be read)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key = line.split(":", 1)[0].strip().lower()
                if key in ("flags", "features"):
                    have = set(line.split(":", 1)[1].split())
                    return [x for x in ISA_FLAGS if x in have]
    except OSError:
        pass
    return []


def check_host(host: dict, what: str):
    """Refuse an object built for another architecture or for ISA extensions this CPU lacks."""
    machine = platform.machine()
    if host.get("machine") and host["machine"] != machine:
        raise TesseraError(f"{what} was built for {host['machine']}, this machine is {machine}: save the plan "
                           "again on a machine of this architecture")
    missing = sorted(set(host.get("isa", ())) - set(host_isa())) if host.get("isa") else []
    if missing and host_isa():
        raise TesseraError(f"{what} was compiled for a CPU with {', '.join(missing)}, which this CPU lacks: save "
                           "the plan again on (a machine like) this one")


class SharedObjectLauncher(PackedEntryLauncher):
    """The packed entry of a loaded shared object."""

    def __init__(self, path: str, entry: str, name: str, arg_abi: list[dict], faults):
        super().__init__(name, arg_abi, faults)
        try:
            self.lib = ctypes.CDLL(os.path.abspath(path))
        except OSError as e:
            raise TesseraError(f"cannot load the kernel object {path} ({e}): the file is damaged, truncated or was "
                               "built for another system; save the plan again") from None
        try:
            self.fn = getattr(self.lib, entry)
        except AttributeError:
            raise TesseraError(f"the kernel object {path} has no entry '{entry}': it is not the object of kernel "
                               f"'{name}'; save the plan again") from None
        self.fn.argtypes, self.fn.restype = [ctypes.c_void_p], None
        self.ranged = not entry.endswith("_grid")   # the whole grid, on one thread


class LoadedCpuKernel:
    """A saved CPU kernel: `k[grid](*numpy_arrays)` launches it (outputs land in the arrays)."""

    def __init__(self, directory, manifest):
        self.manifest = manifest
        self.name = self.__name__ = manifest["kernel"]
        self.target = "cpu"
        self.metadata = manifest["metadata"]
        path = os.path.join(directory, manifest["object"])
        check_host(manifest.get("host", {}), f"the kernel object {path}")
        entry = manifest.get("range_entry") or manifest["entry"]   # (a plan saved before the split: `_grid` only)
        self.launcher = SharedObjectLauncher(path, entry, self.name, self.metadata["args"], manifest.get("faults", []))

    def _check_args(self, args):
        abi = self.metadata["args"]
        if len(args) != len(abi):
            raise LaunchError(f"kernel '{self.name}' takes {len(abi)} arguments, got {len(args)}")
        for spec, a in zip(abi, args):
            if spec["kind"] == "tensor" and not (isinstance(a, np.ndarray) and a.ndim == spec["rank"]):
                raise LaunchError(f"argument '{spec['name']}' of kernel '{self.name}' must be a NumPy array of rank "
                                  f"{spec['rank']}, got {type(a).__name__} {getattr(a, 'shape', '')}")
        check_writable(self.metadata, args)

    def __getitem__(self, grid):
        g = grid3(grid)

        def launch(*args):
            self._check_args(args)
            if 0 not in g:
                self.launcher.launch(g, args)
        return launch

    def prepare(self, *args, grid=None):
        """A launch packed once (see tessera.runtime.prepared)."""
        from .prepared import PreparedLaunch
        self._check_args(args)
        return PreparedLaunch(self.name, self.launcher, args, None if grid is None else grid3(grid))
