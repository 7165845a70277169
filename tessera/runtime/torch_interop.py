"""torch tensors at tessera's boundaries (DESIGN §13), without importing torch until one is seen.

A CPU tensor becomes a NumPy view of its storage (zero-copy through DLPack; bf16, which NumPy's DLPack
import does not know, through an int16 view reinterpreted as ml_dtypes.bfloat16); a CUDA tensor is left
to the GPU launch path (tessera.runtime.cuda), which reads it in place. Results go back the same way: a
NumPy result becomes a torch tensor sharing its memory, a CuPy one a CUDA tensor through DLPack.
Kernels write their output arguments in place, so a torch tensor passed as a kernel output is written."""
from __future__ import annotations

import sys

import numpy as np

from ..errors import DTypeError


def is_torch(x) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "dtype") and hasattr(x, "device")


def _bf16():
    import ml_dtypes
    return ml_dtypes.bfloat16


def host_view(t):
    """A CPU torch tensor as a NumPy array over the same memory (requires_grad tensors through .detach())."""
    import torch
    t = t.detach()
    if t.dtype == torch.bfloat16:
        return np.from_dlpack(t.view(torch.int16)).view(_bf16())
    if t.is_conj() or t.is_neg():
        t = t.resolve_conj().resolve_neg()
    try:
        return np.from_dlpack(t)
    except (TypeError, RuntimeError, BufferError) as e:
        raise DTypeError(f"a torch tensor of dtype {t.dtype} cannot be a tessera array ({e})") from None


def from_torch(t, dtype=None):
    """`ts.from_torch(t, dtype=None)`: the tensor as the array kind tessera runs on (a NumPy view of a CPU
    tensor, the tensor itself on CUDA), converted to `dtype` (a tessera dtype) first if it differs."""
    from .. import dtypes as dt
    if not is_torch(t):
        raise DTypeError(f"ts.from_torch takes a torch tensor, got {type(t).__name__}")
    if dtype is not None:
        import torch
        want = dt.bool_ if dtype in (bool, "bool") else dtype
        if not isinstance(want, dt.DType):
            raise DTypeError(f"ts.from_torch: dtype must be a tessera dtype (ts.f32, ts.bf16, ...), got {dtype!r}")
        target = getattr(torch, {"f32": "float32", "f64": "float64", "f16": "float16", "bf16": "bfloat16",
                                 "i32": "int32", "i64": "int64", "i16": "int16", "i8": "int8", "bool": "bool",
                                 "u8": "uint8"}.get(want.name, "?"), None)
        if target is None:
            raise DTypeError(f"ts.from_torch: torch has no dtype for {want.name}")
        if t.dtype != target:
            t = t.detach().to(target)
    return t if t.is_cuda else host_view(t)


def to_torch(a, device=None):
    """`ts.to_torch(a)`: a tessera array (NumPy or CuPy) as a torch tensor over the same memory."""
    import torch
    if is_torch(a):
        out = a
    elif isinstance(a, np.ndarray):
        if a.dtype == _bf16():
            out = torch.from_numpy(np.ascontiguousarray(a).view(np.int16)).view(torch.bfloat16)
        else:
            out = torch.from_numpy(a if a.flags.writeable else a.copy())
    elif hasattr(a, "__dlpack__"):
        out = torch.from_dlpack(a)
    else:
        raise DTypeError(f"ts.to_torch takes an array, got {type(a).__name__}")
    return out if device is None else out.to(device)


def unwrap(tree):
    """(tree with every CPU torch tensor replaced by its NumPy view, whether any torch tensor was seen)."""
    if "torch" not in sys.modules:   # no tensor can exist: the launch path skips the walk
        return tree, False
    seen = []

    def conv(x):
        if is_torch(x):
            seen.append(x)
            return x if x.is_cuda else host_view(x)
        if isinstance(x, list):
            return [conv(v) for v in x]
        if isinstance(x, tuple):
            return tuple(conv(v) for v in x)
        if isinstance(x, dict):
            return {k: conv(v) for k, v in x.items()}
        return x
    out = conv(tree)
    return out, bool(seen)


def wrap(tree):
    """Every array in a result structure as a torch tensor (the caller passed torch tensors)."""
    if isinstance(tree, list):
        return [wrap(v) for v in tree]
    if isinstance(tree, tuple):
        return tuple(wrap(v) for v in tree)
    if isinstance(tree, dict):
        return {k: wrap(v) for k, v in tree.items()}
    if isinstance(tree, np.ndarray) or hasattr(tree, "__cuda_array_interface__"):
        return to_torch(np.asarray(tree) if isinstance(tree, np.generic) else tree)
    return tree
