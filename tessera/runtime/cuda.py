"""Launching cubins through CuPy (no mlir import): argument packing for the kernel ABI that
`tessera-lower-tile-to-gpu` produces, dynamic shared memory with the >48 KiB opt-in.

Kernel ABI (convert-gpu-to-nvvm's memref expansion): a rank-r tensor is 2 + 1 + 2r parameters —
allocated pointer, aligned pointer, element offset, r sizes, r strides (elements); `index`
scalars are u64, f32 scalars .f32, i32 .u32.
"""
from __future__ import annotations

import numpy as np

from ..errors import BackendUnavailable, LaunchError
from .prepared import CUDA_GRID_LIMITS, check_grid, check_scalar

_SCALAR_NP = {"index": np.int64, "i64": np.int64, "i32": np.int32, "i16": np.int16, "i8": np.int8,
              "bool": np.int8, "f32": np.float32, "f64": np.float64, "f16": np.float16,
              "bf16": lambda v: np.uint16(np.float32(v).view(np.uint32) >> 16)}


def cupy():
    try:
        import cupy as cp  # noqa: F401
    except ImportError:
        raise BackendUnavailable("CuPy is not installed: `pip install cupy-cuda13x` (the [cuda] extra)") from None
    return cp


class TorchView:
    """A torch CUDA tensor seen like a CuPy array (pointer, shape, byte strides, dtype name).
    Needed for bf16, which neither CuPy nor torch's __cuda_array_interface__ can express."""

    class _Data:
        def __init__(self, ptr):
            self.ptr = ptr

    def __init__(self, t):
        self.tensor = t
        self.data = self._Data(t.data_ptr())
        self.shape = tuple(t.shape)
        self.itemsize = t.element_size()
        self.strides = tuple(s * self.itemsize for s in t.stride())
        self.ndim = t.dim()
        self.nbytes = t.numel() * self.itemsize
        self.dtype = np.dtype(_TORCH_DTYPES.get(str(t.dtype), "V%d" % self.itemsize)) \
            if str(t.dtype) != "torch.bfloat16" else _bf16_dtype()


_TORCH_DTYPES = {"torch.float32": "float32", "torch.float16": "float16", "torch.int32": "int32",
                 "torch.int64": "int64", "torch.bool": "bool", "torch.int8": "int8", "torch.float64": "float64"}


def _bf16_dtype():
    import ml_dtypes
    return np.dtype(ml_dtypes.bfloat16)


def as_device_array(a):
    """CuPy arrays as they are; torch CUDA tensors as TorchView (any dtype, bf16 included);
    anything else with __cuda_array_interface__ / DLPack through CuPy."""
    if isinstance(a, TorchView):
        return a
    if type(a).__module__.startswith("torch"):
        if not a.is_cuda:
            raise LaunchError("a torch tensor on the CPU: pass NumPy arrays for the CPU backend")
        return TorchView(a)
    cp = cupy()
    if isinstance(a, cp.ndarray):
        return a
    if hasattr(a, "__cuda_array_interface__"):
        return cp.asarray(a)
    if hasattr(a, "__dlpack__"):
        return cp.from_dlpack(a)
    raise LaunchError(f"expected a GPU array, got {type(a).__name__}")


def device_arch() -> str:
    """The target whose cubins load on the current device (SASS is not portable across majors)."""
    cp = cupy()
    cc = int(cp.cuda.Device().compute_capability)
    if cc == 90:
        return "sm_90a"
    if 80 <= cc < 90:
        return "sm_80"
    raise BackendUnavailable(f"no tessera target for compute capability {cc // 10}.{cc % 10} (sm_80..sm_89, sm_90)")


def aligned_stride_class(shape, strides, itemsize, ptr) -> bool:
    """The aligned stride class (TMA on sm_90a, 16-byte vector accesses on every NVIDIA target): unit
    inner stride, positive 16-byte multiples elsewhere, 16-byte aligned base."""
    return (len(shape) >= 1 and strides[-1] == itemsize and all(s > 0 and s % 16 == 0 for s in strides[:-1])
            and ptr % 16 == 0)


def whole_chunk_rows(shape, itemsize) -> bool:
    """The last dim holds a whole number of 16-byte chunks (a kernel specialised on it tests bounds per
    16-byte run, never per element)."""
    return len(shape) >= 1 and (shape[-1] * itemsize) % 16 == 0


INDEX32_LIMIT = 1 << 30   # tessera-narrow-index's bound on sizes, strides, element offsets and integer arguments


def small_tensor(shape, strides, itemsize) -> bool:
    """Every size and stride (elements) and every element's offset from the first is within 2^30: a kernel
    may index the tensor in 32 bits."""
    if any(s % itemsize for s in strides):
        return False
    el = [s // itemsize for s in strides]
    span = sum((n - 1) * abs(s) for n, s in zip(shape, el) if n > 0)
    return all(n <= INDEX32_LIMIT for n in shape) and all(abs(s) <= INDEX32_LIMIT for s in el) and span < INDEX32_LIMIT


def small_int(v) -> bool:
    return abs(int(v)) <= INDEX32_LIMIT


def check_index32(spec, value, d=None):
    """A kernel compiled with 32-bit indices (`index32` in its ABI) refuses arguments beyond their range."""
    ok = small_tensor(d.shape, d.strides, d.itemsize) if spec["kind"] == "tensor" else small_int(value)
    if not ok:
        raise LaunchError(f"argument '{spec['name']}': this compiled kernel computes indices in 32 bits, which "
                          f"needs sizes, strides, offsets and integer arguments within 2^30; launch the kernel "
                          "itself (it compiles a 64-bit variant for this launch)")


def check_aligned(spec, d):
    """A kernel compiled for the aligned stride class of an argument reads it with vector accesses:
    refuse other arrays rather than fault on the GPU."""
    if spec.get("whole_chunks") and not whole_chunk_rows(d.shape, d.itemsize):
        raise LaunchError(f"argument '{spec['name']}': this compiled kernel was specialised on its last dim "
                          f"being a whole number of 16-byte chunks ({d.shape[-1] if d.shape else 0} elements of "
                          f"{d.itemsize} bytes is not); launch the kernel itself (it compiles a variant for this "
                          "shape)")
    if not aligned_stride_class(d.shape, d.strides, d.itemsize, d.data.ptr):
        raise LaunchError(f"argument '{spec['name']}': this compiled kernel reads it with 16-byte vector accesses, "
                          "which need a unit inner stride and a 16-byte aligned base and row strides; launch the "
                          "kernel itself (it compiles a variant for this layout) or pass a contiguous array")


def check_specialisation(spec, value, d=None):
    """What a compiled kernel was specialised on for an argument (`spec` from its ABI; `d` the device array
    of a tensor) holds for this launch's value, else a LaunchError (every launcher runs this)."""
    if spec.get("aligned"):
        check_aligned(spec, d)
    if spec.get("index32"):
        check_index32(spec, value, d)


def keep_by_arg(abi, args, index):
    """The device array of a tensor argument (the one a TMA descriptor describes)."""
    if abi[index]["kind"] != "tensor":
        raise LaunchError(f"TMA descriptor for a non-tensor argument {abi[index]['name']}")
    return as_device_array(args[index])


class CudaLauncher:
    grid_limits = CUDA_GRID_LIMITS

    def __init__(self, cubin: bytes, name: str, abi: list[dict], shared_bytes: int, num_warps: int, tma=(),
                 static_bytes: int = 0):
        cp = cupy()
        self.module = cp.cuda.function.Module()
        self.module.load(cubin)
        self.fn = self.module.get_function(name)
        self.abi = abi
        self.shared = int(shared_bytes)
        self.block = (int(num_warps) * 32, 1, 1)
        if self.shared + int(static_bytes) > 48 * 1024:  # the 48 KiB default covers static + dynamic
            self.fn.max_dynamic_shared_size_bytes = self.shared
        self.tma = [tuple(t) for t in tma]  # (kernel argument, box rows, box columns) per descriptor
        if self.tma:
            from .tma import DescriptorCache
            self.descriptors = DescriptorCache()
        from .tensor_list import TableCache
        self.tables = TableCache(lambda host: cp.asarray(host))

    def _list_table(self, spec, a):
        arrays = [as_device_array(x) for x in a] if isinstance(a, (list, tuple)) else a
        return arrays, self.tables.get(spec, arrays)

    def pack(self, args):
        packed, keep = [], []
        for spec, a in zip(self.abi, args):
            if spec["kind"] == "tensor_list":   # the table of element descriptors (runtime.tensor_list)
                arrays, a = self._list_table(spec, a)
                keep += arrays
            if spec["kind"] in ("tensor", "tensor_list"):
                d = as_device_array(a) if spec["kind"] == "tensor" else a
                keep.append(d)
                if spec["kind"] == "tensor":
                    check_specialisation(spec, a, d)
                item = d.itemsize
                if any(s % item for s in d.strides):
                    raise LaunchError(f"argument '{spec['name']}': strides must be whole elements")
                ptr = np.uint64(d.data.ptr)
                packed += [ptr, ptr, np.int64(0)]
                packed += [np.int64(s) for s in d.shape]
                packed += [np.int64(s // item) for s in d.strides]
            else:
                check_scalar(spec, a)
                check_specialisation(spec, a)
                packed.append(_SCALAR_NP[spec["abi"]](a))
        for arg, box_rows, box_cols in self.tma:  # TMA descriptors follow the user arguments
            d = keep_by_arg(self.abi, args, arg)
            if d.strides[-1] != d.itemsize or d.strides[0] % 16 or d.data.ptr % 16:
                raise LaunchError(f"argument '{self.abi[arg]['name']}': this kernel reads it with TMA, which needs a "
                                  "unit inner stride and 16-byte aligned rows and base; launch through the kernel "
                                  "(it recompiles for other layouts) or pass a contiguous array")
            packed.append(np.uint64(self.descriptors.device_pointer(d, box_rows, box_cols)))
        return packed, keep

    def _stream(self, keep):
        if any(isinstance(k, TorchView) for k in keep):  # run on torch's current stream, not CuPy's
            import torch
            return cupy().cuda.ExternalStream(torch.cuda.current_stream().cuda_stream)
        return None

    def launch(self, grid, args):
        packed, keep = self.pack(args)
        self.fn(check_grid(grid, CUDA_GRID_LIMITS), self.block, tuple(packed), shared_mem=self.shared, stream=self._stream(keep))
        del keep

    def prepare(self, grid, args):
        """Arguments packed once (CuPy still converts the tuple per call: the native launcher is the fast path)."""
        from .prepared import PyPrepared
        packed, keep = self.pack(args)
        packed, stream, fn, block, shared = tuple(packed), self._stream(keep), self.fn, self.block, self.shared

        def run(grid3):
            fn(check_grid(grid3, CUDA_GRID_LIMITS), block, packed, shared_mem=shared, stream=stream)
        return PyPrepared(run, tuple(grid), keep)
