"""Host-side TMA descriptors (CUtensorMap, 128 bytes) through libcuda's cuTensorMapEncodeTiled,
loaded with ctypes: no CUDA headers, no MLIR. The kernel takes a pointer to the descriptor in
device memory (reference/mlir-nvidia-probe.md §1.1): dims and strides innermost first, strides in
bytes, box = the shared-memory tile, 128-byte swizzle, out-of-bounds elements read as zero."""
from __future__ import annotations

import ctypes

import numpy as np

from ..errors import BackendUnavailable, LaunchError

_DTYPES = {"float16": 6, "bfloat16": 9, "float32": 7}
SWIZZLE_128B = 3
_lib = None


def _libcuda():
    global _lib
    if _lib is None:
        try:
            _lib = ctypes.CDLL("libcuda.so.1")
        except OSError:
            raise BackendUnavailable("libcuda.so.1 not found: TMA descriptors need the NVIDIA driver") from None
        f = _lib.cuTensorMapEncodeTiled
        f.restype = ctypes.c_int
        f.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32, ctypes.c_void_p,
                      ctypes.POINTER(ctypes.c_uint64), ctypes.POINTER(ctypes.c_uint64),
                      ctypes.POINTER(ctypes.c_uint32), ctypes.POINTER(ctypes.c_uint32),
                      ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int]
    return _lib


def encode_2d(ptr: int, shape, strides_bytes, dtype_name: str, box_outer: int, box_inner: int) -> bytes:
    """The 128 bytes of a CUtensorMap for a row-major 2-D tensor and a (box_outer × box_inner) box."""
    if dtype_name not in _DTYPES:
        raise LaunchError(f"TMA: unsupported dtype {dtype_name}")
    rows, cols = (int(x) for x in shape)
    raw = (ctypes.c_uint8 * 256)()  # the driver wants the host CUtensorMap 64-byte aligned (128 in cuda.h)
    addr = (ctypes.addressof(raw) + 127) & ~127
    dims = (ctypes.c_uint64 * 2)(cols, rows)
    gstrides = (ctypes.c_uint64 * 1)(int(strides_bytes[0]))
    box = (ctypes.c_uint32 * 2)(box_inner, box_outer)
    estr = (ctypes.c_uint32 * 2)(1, 1)
    rc = _libcuda().cuTensorMapEncodeTiled(ctypes.c_void_p(addr), _DTYPES[dtype_name], 2, ctypes.c_void_p(ptr),
                                           dims, gstrides, box, estr, 0, SWIZZLE_128B, 0, 0)
    if rc != 0:
        raise LaunchError(f"cuTensorMapEncodeTiled failed (CUresult {rc}) for shape {shape}, strides {strides_bytes}")
    return ctypes.string_at(addr, 128)


class DescriptorCache:
    """Device copies of encoded descriptors, reused while (pointer, shape, strides, box) repeat."""

    def __init__(self):
        self._cache = {}

    def device_pointer(self, arr, box_outer, box_inner) -> int:
        import cupy as cp
        key = (arr.data.ptr, arr.shape, arr.strides, str(arr.dtype), box_outer, box_inner)
        hit = self._cache.get(key)
        if hit is None:
            dtype_name = "bfloat16" if arr.dtype.name in ("bfloat16", "uint16") else arr.dtype.name
            raw = encode_2d(arr.data.ptr, arr.shape, arr.strides, dtype_name, box_outer, box_inner)
            hit = cp.asarray(np.frombuffer(raw, dtype=np.uint8))  # CuPy allocations are 256-byte aligned
            self._cache[key] = hit
        return hit.data.ptr
