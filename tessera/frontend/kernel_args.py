"""Checking and classifying the arguments of a kernel launch (tessera.frontend.kernel): arrays, lists of
arrays, scalars, launch options and grids, with errors located at the launching line."""
from __future__ import annotations

import numpy as np

from .. import dtypes as dt
from ..errors import CompilationError, ShapeError, DTypeError, LaunchError
from ..runtime.cuda import aligned_stride_class
from ..runtime.prepared import check_grid, grid3, grid_limits, out_of_range
from .annotations import TensorSpec, Tensor


def index32(bound) -> bool:
    """Every tensor and integer argument of a launch is small: the NVIDIA kernel computes per-thread
    indices in 32 bits (tessera-narrow-index)."""
    args = [b for b in bound if b.kind in ("tensor", "tensor_list") or _int_scalar(b)]
    return bool(args) and all(b.small for b in args) and any(b.kind in ("tensor", "tensor_list") for b in args)


def _list_of_tensors(ann) -> bool:
    """`list[tile.Tensor]`, `list[tile.Tensor["B", "S", "D", ts.bf16]]` (also `tuple[...]`, `list`)."""
    origin = getattr(ann, "__origin__", None)
    if origin not in (list, tuple):
        return False
    args = getattr(ann, "__args__", ())
    return len(args) >= 1 and (args[0] is Tensor or isinstance(args[0], TensorSpec))


def _int_scalar(b) -> bool:
    return b.kind == "scalar" and (b.dtype == "index" or (isinstance(b.dtype, dt.DType) and b.dtype.is_int
                                                         and b.dtype is not dt.bool_))


def _call_error(msg, cls=CompilationError):
    """An error about a launch, located at the user's launching line."""
    from .function import user_frame
    file, line, col = user_frame()
    file = None if file == "<unknown>" else file
    return cls(msg, file, line, col)


def _check_launch_options(options):
    """num_warps: 1 to 32 (a CTA has at most 1024 threads); num_stages: at least 1; the flags: bools."""
    def bad(name, want):
        raise _call_error(f"{name} must be {want}, got {options[name]!r}")

    def is_int(v):
        return isinstance(v, int) and not isinstance(v, bool)
    if "num_warps" in options and not (is_int(options["num_warps"]) and 1 <= options["num_warps"] <= 32):
        bad("num_warps", "an int from 1 to 32 (at most 1024 threads per program)")
    if "num_stages" in options and not (is_int(options["num_stages"]) and options["num_stages"] >= 1):
        bad("num_stages", "an int >= 1")
    for flag in ("warp_specialize", "persistent"):
        if flag in options and not isinstance(options[flag], bool):
            bad(flag, "True or False")


def _check_outputs(ck, runtime_args):
    from ..runtime.prepared import read_only_message, read_only_output
    name = read_only_output(ck.metadata, runtime_args)
    if name is not None:
        raise _call_error(read_only_message(name), LaunchError)


def _is_cuda_array(a):
    if type(a).__module__.startswith("torch"):  # hasattr(__cuda_array_interface__) raises for some tensors
        return bool(getattr(a, "is_cuda", False))
    return hasattr(a, "__cuda_array_interface__") or (hasattr(a, "__dlpack_device__") and not isinstance(a, np.ndarray)
                                                       and a.__dlpack_device__()[0] == 2)


def _tma_ok(a) -> bool:
    """The aligned stride class (runtime.cuda.aligned_stride_class) of an argument: a view into the middle
    of an array is not, on the device as in NumPy (whose allocations are 16-byte aligned)."""
    if isinstance(a, np.ndarray):
        ptr = a.ctypes.data if a.size else 0
    else:
        ptr = a.data.ptr if hasattr(a, "data") and hasattr(a.data, "ptr") else 0
    return aligned_stride_class(a.shape, a.strides, a.itemsize, ptr)


_ANY_TENSOR = TensorSpec((), None)


def _check_scalar_range(name, v, d):
    """An integer argument must fit the type it is passed as (ctypes and the launchers would wrap it); the
    launchers check again (runtime.prepared.check_scalar), this check locates the error at the launch."""
    if not isinstance(d, dt.DType) or not d.is_int or d is dt.bool_ or not isinstance(v, (int, np.integer)):
        return
    msg = out_of_range(name, v, d.bits, d.name)
    if msg is not None:
        raise _call_error(msg, LaunchError)


def _check_grid(grid, target):
    """The grid as 3 ints within the target's limits, errors located at the launch."""
    try:
        return check_grid(grid3(grid), grid_limits(target))
    except LaunchError as e:
        raise _call_error(str(e), LaunchError) from None


def _array_arg(name, v):
    """An array argument as the launchers see it (torch tensors & co. as CuPy-like device views)."""
    if not (isinstance(v, np.ndarray) or _is_cuda_array(v)):
        raise _call_error(f"argument '{name}' must be an array, got {type(v).__name__}")
    if not isinstance(v, np.ndarray):
        from ..runtime.cuda import as_device_array
        v = as_device_array(v)
    if any(s % v.itemsize for s in v.strides):
        raise _call_error(f"argument '{name}' has strides {tuple(v.strides)} bytes, not whole {v.itemsize}-byte "
                          "elements: pass np.ascontiguousarray(...) of it", LaunchError)
    return v


def _tensor_dims(name, spec, v, dim_values, dim_src, default_dim=None):
    """(dtype, dims) of an array argument against its annotation, binding its named dims."""
    if str(v.dtype) in ("uint16", "int16") and not isinstance(v, np.ndarray) and spec is not None \
            and spec.dtype is dt.bf16:
        adt = dt.bf16  # CuPy has no bfloat16: 16-bit integer GPU arrays hold bf16 bit patterns
    else:
        try:
            adt = dt.from_numpy(v.dtype)
        except KeyError:
            raise _call_error(f"argument '{name}' has unsupported dtype {v.dtype}", DTypeError) from None
    if spec is not None and spec.dtype is not None and spec.dtype is not adt:
        raise _call_error(f"argument '{name}' has dtype {adt.name}, the kernel declares {spec.dtype.name}", DTypeError)
    if spec is not None and spec.dims and len(spec.dims) != v.ndim:
        raise _call_error(f"argument '{name}' has {v.ndim} dims {tuple(v.shape)}, the kernel declares "
                          f"{len(spec.dims)} {list(spec.dims)}", ShapeError)
    dims = []
    for i, size in enumerate(v.shape):
        d = spec.dims[i] if spec is not None and spec.dims else None
        if isinstance(d, int):
            if d != size:
                raise _call_error(f"argument '{name}' dim {i} is {size}, the kernel declares {d}", ShapeError)
            dims.append(d)
            continue
        if d is None:
            d = default_dim(i) if default_dim else f"{name}.shape[{i}]"
        if d in dim_values and dim_values[d] != size:
            raise _call_error(f"dim '{d}' is {dim_values[d]} in argument '{dim_src[d]}' but {size} in argument "
                              f"'{name}'", ShapeError)
        dim_values.setdefault(d, int(size))
        dim_src.setdefault(d, name)
        dims.append(d)
    return adt, dims


def _dtype_name(b):
    return b.dtype.name if isinstance(b.dtype, dt.DType) else "int"  # runtime ints are `index`


_SCALAR_TYPES = (bool, int, float, np.bool_, np.integer, np.floating)
LAUNCH_CACHE_SIZE = 64   # signatures remembered per kernel (cleared, not evicted one by one, when full)


def _value_signature(v):
    t = type(v)
    if t is np.ndarray:
        return (v.shape, v.dtype.str, v.strides)
    if t in (list, tuple):
        parts = tuple(_value_signature(x) for x in v)
        return None if any(p is None for p in parts) else (t, parts)
    if isinstance(v, _SCALAR_TYPES) or isinstance(v, (str, dt.DType)):
        return (t, v)   # by value: the range checks, index32 and constexprs depend on it
    return None


def launch_signature(params, values, options, backend):
    """A hashable key that determines everything `specialise` and `compile_for` derive from a launch's
    arguments (shapes, dtypes, strides, scalar and constexpr values, options, the backend knobs), so a
    launch with the signature of an earlier one can reuse its compiled kernel without specialising again;
    None (take the full path) for anything else: an array that is not a plain NumPy array, an unhashable
    value."""
    sig = [backend, tuple(sorted(options.items()))]
    for p in params:
        s = _value_signature(values[p.name])
        if s is None:
            return None
        sig.append(s)
    return tuple(sig)
