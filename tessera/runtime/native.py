"""The native launcher: cubins launched through tessera._native (C++, libcuda loaded at run time),
with the same interface as the CuPy launcher in cuda.py plus `prepare`, which packs the arguments
once and returns a handle whose call is a bare cuLaunchKernelEx. No mlir import; the launches and
TMA descriptor uploads need no CuPy, but choosing the target of a launch (`device_arch`) and the
autotuner's timing still read the device through CuPy. See docs/native-launcher.md.

    python -m tessera.runtime.native build    # compile tessera/_native<EXT_SUFFIX> in place with g++
    python -m tessera.runtime.native info     # is it importable, does libcuda load
"""
from __future__ import annotations

import sys

from .. import knobs
from ..errors import BackendUnavailable, LaunchError
from . import cuda as _cuda  # MLIR-free; looked up per call (tests stub as_device_array)
from .prepared import CUDA_GRID_LIMITS, check_grid, check_scalar

# Parameter type codes of the native module, by the ABI dtype names of kernel metadata.
SCALAR_CODES = {"index": "q", "i64": "q", "i32": "i", "i16": "h", "i8": "b", "bool": "b",
                "f32": "f", "f64": "d", "f16": "e", "bf16": "B"}
_TMA_DTYPES = {"float16": "float16", "bfloat16": "bfloat16", "uint16": "bfloat16", "float32": "float32"}

_module = None
_import_error = None


def module():
    """tessera._native, or None when it is not built (the reason in `why_unavailable()`)."""
    global _module, _import_error
    if _module is None and _import_error is None:
        try:
            from .. import _native
            _module = _native
        except ImportError as e:
            _import_error = f"tessera._native is not built ({e}); run `python -m tessera.runtime.native build`"
    return _module


def why_unavailable() -> str | None:
    """None when the native launcher can run here, else why not (not built, no libcuda, cuInit failed)."""
    m = module()
    if m is None:
        return _import_error
    ok, reason = m.available()
    return None if ok else reason


def available() -> bool:
    return why_unavailable() is None


def codes_for(abi, num_tma: int = 0) -> str:
    """The per-parameter type codes of a kernel: 3 + 2r per rank-r tensor, one per scalar, then
    one u64 per TMA descriptor (the ABI documented in cuda.py)."""
    out = []
    for spec in abi:
        if spec["kind"] in ("tensor", "tensor_list"):   # a list is passed as its rank-2 table
            r = int(spec["rank"]) if spec["kind"] == "tensor" else 2
            out.append("QQq" + "q" * (2 * r))
        else:
            if spec["abi"] not in SCALAR_CODES:
                raise LaunchError(f"argument '{spec['name']}': no native packing for ABI type {spec['abi']}")
            out.append(SCALAR_CODES[spec["abi"]])
    return "".join(out) + "Q" * num_tma


def flat_values(abi, args, as_device_array=None, tables=None):
    """One value per kernel parameter for the user arguments (as CudaLauncher.pack lays them out,
    before conversion), and the device arrays seen. The PTX emulator passes its own
    `as_device_array` (arrays in its fake device memory) and `tables` (a runtime.tensor_list.TableCache
    writing there), so it runs this same packing."""
    as_device_array = as_device_array or _cuda.as_device_array
    vals, keep = [], []
    for spec, a in zip(abi, args):
        if spec["kind"] == "tensor_list":   # the table of element descriptors (runtime.tensor_list)
            if not isinstance(a, (list, tuple)):
                raise LaunchError(f"argument '{spec['name']}' must be a list of arrays, got {type(a).__name__}")
            arrays = [as_device_array(x) for x in a]
            keep += arrays
            d = tables.get(spec, arrays)
            keep.append(d)
            vals += (d.data.ptr, d.data.ptr, 0, *d.shape, *(s // d.itemsize for s in d.strides))
        elif spec["kind"] == "tensor":
            d = as_device_array(a)
            keep.append(d)
            item = d.itemsize
            shape, strides = d.shape, d.strides
            if len(shape) != spec["rank"]:
                raise LaunchError(f"argument '{spec['name']}': expected rank {spec['rank']}, got {len(shape)}")
            ptr = d.data.ptr
            _cuda.check_specialisation(spec, a, d)
            vals += (ptr, ptr, 0)
            vals += shape  # the native side converts (and range-checks) every value
            for s in strides:
                if s % item:
                    raise LaunchError(f"argument '{spec['name']}': strides must be whole elements")
                vals.append(s // item)
        else:
            check_scalar(spec, a)
            _cuda.check_specialisation(spec, a)
            vals.append(a)
    return vals, keep


def launch_stream(keep) -> int:
    """torch's current stream when a torch tensor is involved, else CuPy's if CuPy is in use,
    else 0 (the legacy default stream)."""
    if any(type(k) is _cuda.TorchView for k in keep):
        import torch
        return int(torch.cuda.current_stream().cuda_stream)
    cp = sys.modules.get("cupy")
    if cp is not None:
        return int(cp.cuda.get_current_stream().ptr)
    return 0


class NativeLauncher:
    """Drop-in for cuda.CudaLauncher: `launch(grid, args)`; plus `prepare(grid, args)`."""

    grid_limits = CUDA_GRID_LIMITS

    def __init__(self, cubin: bytes, name: str, abi: list[dict], shared_bytes: int, num_warps: int, tma=(),
                 cluster=(1, 1, 1), static_bytes: int = 0):
        m = module()
        if m is None:
            raise BackendUnavailable(_import_error)
        self.abi = abi
        self.name = name
        self.tma = [tuple(int(x) for x in t) for t in tma]  # (kernel argument, box rows, box columns)
        self.codes = codes_for(abi, len(self.tma))
        self.shared = int(shared_bytes)
        self.block = (int(num_warps) * 32, 1, 1)
        self.cluster = tuple(int(c) for c in cluster) + (1,) * (3 - len(tuple(cluster)))
        self._descriptors = {}  # (ptr, shape, strides, dtype, box) -> DeviceBuffer
        from .tensor_list import TableCache
        self._tables = TableCache(lambda host: m.DeviceBuffer(host.tobytes()))
        try:
            self.kernel = m.Kernel(bytes(cubin), name, self.codes, self.shared, self.block, self.cluster,
                                   static_bytes=int(static_bytes))
        except m.DriverUnavailable as e:
            raise BackendUnavailable(f"native launcher: {e}") from None
        except m.CudaError as e:
            raise LaunchError(f"loading kernel '{name}': {e}") from None

    def values(self, args):
        """The flat parameter values of one launch and the device arrays to keep alive."""
        if len(args) != len(self.abi):
            raise LaunchError(f"kernel '{self.name}' takes {len(self.abi)} arguments, got {len(args)}")
        vals, keep = flat_values(self.abi, args, tables=self._tables)
        for arg, box_rows, box_cols in self.tma:  # TMA descriptors follow the user arguments
            vals.append(self._descriptor(_cuda.keep_by_arg(self.abi, args, arg), arg, box_rows, box_cols))
        return vals, keep

    def _descriptor(self, d, arg, box_rows, box_cols) -> int:
        key = (int(d.data.ptr), tuple(d.shape), tuple(d.strides), str(d.dtype), box_rows, box_cols)
        buf = self._descriptors.get(key)
        if buf is None:
            inputs = tma_encode_inputs(self.abi, arg, d, box_rows, box_cols)
            m = module()
            try:
                raw = m.encode_tma_2d(*inputs)
                buf = m.DeviceBuffer(raw)  # cuMemAlloc is 256-byte aligned; the kernel wants 64
            except m.CudaError as e:
                raise LaunchError(f"argument '{self.abi[arg]['name']}': {e}") from None
            self._descriptors[key] = buf
        return buf.ptr

    def launch(self, grid, args):
        vals, keep = self.values(args)
        grid = check_grid(grid, CUDA_GRID_LIMITS)
        try:
            self.kernel.launch(grid, vals, launch_stream(keep))
        except _launch_errors() as e:
            raise LaunchError(f"launching kernel '{self.name}': {e}") from None
        del keep

    def prepare(self, grid, args):
        """A callable that launches this grid with these arguments, packed once; the arrays (and
        the stream, the current one now) are fixed. It keeps the arrays alive; `.set_grid(g)`."""
        vals, keep = self.values(args)
        grid = check_grid(grid, CUDA_GRID_LIMITS)
        try:
            p = self.kernel.prepare(grid, vals, launch_stream(keep))
        except _launch_errors() as e:
            raise LaunchError(f"preparing kernel '{self.name}': {e}") from None
        p.keep = keep  # Prepared has a __dict__ for this; calling it stays entirely in C++
        return p



def tma_encode_inputs(abi, arg, d, box_rows, box_cols):
    """The arguments of `encode_tma_2d` (pointer, rows, columns, row stride in bytes, dtype name, box
    rows, box columns) for device array `d`, after the checks TMA needs. The PTX emulator builds its
    descriptors from these same inputs."""
    if len(d.shape) != 2 or d.strides[-1] != d.itemsize or d.strides[0] % 16 or d.data.ptr % 16:
        raise LaunchError(f"argument '{abi[arg]['name']}': this kernel reads it with TMA, which needs "
                          "a 2-D array with a unit inner stride and 16-byte aligned rows and base; launch "
                          "through the kernel (it recompiles for other layouts) or pass a contiguous array")
    dtype = _TMA_DTYPES.get(d.dtype.name)
    if dtype is None:
        raise LaunchError(f"argument '{abi[arg]['name']}': TMA: unsupported dtype {d.dtype.name}")
    return (int(d.data.ptr), int(d.shape[0]), int(d.shape[1]), int(d.strides[0]), dtype, int(box_rows),
            int(box_cols))


def _launch_errors():
    return (RuntimeError, ValueError, OverflowError, TypeError)  # CudaError and pybind cast errors are RuntimeErrors


def make_launcher(cubin, name, abi, shared_bytes, num_warps, tma=(), cluster=(1, 1, 1), static_bytes=0):
    """The native launcher unless TESSERA_LAUNCHER=cupy or it cannot run here, else the CuPy one."""
    choice = knobs.launcher()
    if choice not in (None, "native", "cupy"):
        raise BackendUnavailable(f"TESSERA_LAUNCHER={choice}: expected 'native' or 'cupy'")
    clustered = any(int(c) > 1 for c in cluster)
    if choice != "cupy":
        why = why_unavailable()
        if why is None:
            return NativeLauncher(cubin, name, abi, shared_bytes, num_warps, tma, cluster, static_bytes)
        if choice == "native":
            raise BackendUnavailable(f"TESSERA_LAUNCHER=native but the native launcher cannot run: {why}")
        if clustered:
            raise BackendUnavailable(f"kernel '{name}' needs thread-block clusters {tuple(cluster)}, which only the "
                                     f"native launcher supports, and it cannot run: {why}")
    elif clustered:
        raise BackendUnavailable(f"kernel '{name}' needs thread-block clusters {tuple(cluster)}: the CuPy launcher "
                                 "cannot launch them (unset TESSERA_LAUNCHER=cupy)")
    from .cuda import CudaLauncher
    return CudaLauncher(cubin, name, abi, shared_bytes, num_warps, tma, static_bytes)


# ---- building in place ------------------------------------------------------------------------
def _pybind11_include() -> str:
    try:
        import pybind11
        return pybind11.get_include()
    except ImportError:
        pass
    try:  # torch bundles pybind11's headers
        import importlib.util
        import os
        spec = importlib.util.find_spec("torch")
        if spec and spec.origin:
            inc = os.path.join(os.path.dirname(spec.origin), "include")
            if os.path.exists(os.path.join(inc, "pybind11", "pybind11.h")):
                return inc
    except Exception:  # noqa: BLE001
        pass
    raise BackendUnavailable("pybind11 headers not found: `pip install pybind11` (or install torch, which bundles them)")


def build(cxx: str | None = None, verbose: bool = True) -> str:
    """Compile runtime/launcher.cpp into tessera/_native<EXT_SUFFIX> for this Python, with g++."""
    import os
    import subprocess
    import sysconfig
    from pathlib import Path
    pkg = Path(__file__).resolve().parent.parent
    src = pkg.parent / "runtime" / "launcher.cpp"
    if not src.exists():
        raise BackendUnavailable(f"{src} not found: building needs a source checkout")
    out = pkg / ("_native" + sysconfig.get_config_var("EXT_SUFFIX"))
    cmd = [cxx or os.environ.get("CXX", "g++"), "-O2", "-std=c++17", "-fPIC", "-shared", "-fvisibility=hidden",
           "-I" + _pybind11_include(), "-I" + str(src.parent), "-I" + sysconfig.get_paths()["include"],
           str(src), "-o", str(out), "-ldl"]
    if verbose:
        print(" ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True)
    return str(out)


def _main(argv):
    cmd = argv[0] if argv else "info"
    if cmd == "build":
        print(build())
        return 0
    if cmd == "info":
        why = why_unavailable()
        print("native launcher: " + ("available" if why is None else f"unavailable: {why}"))
        return 0 if why is None else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
