"""Lists of arrays as the optimiser kernels see them (MLIR-free): flat 1-D views, dtype groups, the block
table of a launch, compiled kernels per (kernel, target, list lengths), and the launch itself.

Arrays are NumPy (the CPU backend, or the PTX emulator under TESSERA_BACKEND=emu), CuPy or torch CUDA
tensors (the NVIDIA backend); torch CPU tensors are used through NumPy views of their memory. An array
updated in place must be contiguous (C or Fortran order), so that its flat view is the array itself.

The kernels (tessera.optim.kernels) take `list[tile.Tensor]` arguments whose elements have different sizes:
the launch table carries each element's own size, which the bounds checks of the kernel's loads and stores
read. The frontend binds one shape per list when a kernel is launched through `kernel[grid](...)`, so these
kernels are compiled with `ts.compile` from same-shaped examples (each list's largest element repeated) —
nothing in them is specialised on a size — and the compiled kernel is launched with the real lists.
"""
from __future__ import annotations

import math

import numpy as np

from .. import dtypes as dt
from ..errors import DTypeError, LaunchError, TesseraError
from ..runtime import torch_interop
from .kernels import BLOCK

FLOATS = ("f32", "f64", "bf16", "f16")


def error(msg, cls=LaunchError):
    """An error located at the user's line (the first frame outside tessera)."""
    from ..frontend.function import user_frame
    file, line, col = user_frame()
    return cls(msg, None if file == "<unknown>" else file, line, col)


def as_array(a, name: str):
    """`a` as a NumPy array (torch CPU tensors: a view of their memory) or a GPU array as it is."""
    if isinstance(a, np.ndarray):
        return a
    if torch_interop.is_torch(a):
        return a if a.is_cuda else torch_interop.host_view(a)
    from ..frontend.kernel_args import _is_cuda_array
    if _is_cuda_array(a):
        return a
    raise error(f"{name} must be an array (NumPy, CuPy or torch), got {type(a).__name__}")


def kind(a) -> str:
    """"numpy", "torch" (CUDA tensors) or "cupy" (any other GPU array)."""
    if isinstance(a, np.ndarray):
        return "numpy"
    return "torch" if torch_interop.is_torch(a) else "cupy"


def dtype_name(a, name: str) -> str:
    """The ts name of an array's dtype ("f32", "bf16", ...), or a DTypeError naming the argument."""
    if torch_interop.is_torch(a):
        s = str(a.dtype).replace("torch.", "")
        table = {"float32": "f32", "float64": "f64", "bfloat16": "bf16", "float16": "f16"}
        if s in table:
            return table[s]
        raise error(f"{name} has dtype {s}: expected a floating-point dtype ({', '.join(FLOATS)})", DTypeError)
    try:
        return dt.from_numpy(a.dtype).name
    except (KeyError, TypeError):
        raise error(f"{name} has unsupported dtype {a.dtype}", DTypeError) from None


def flat(a, name: str, writable: bool):
    """(1-D view, order): the array's elements in memory order, sharing its memory. A non-contiguous array
    is an error when it is written (its update could not land in place), else it is copied (order "C")."""
    if torch_interop.is_torch(a):
        if a.is_contiguous():
            return a.view(-1), "C"
    elif a.flags.c_contiguous:
        return a.reshape(-1), "C"
    elif a.flags.f_contiguous:
        return a.reshape(-1, order="F"), "F"
    if writable:
        raise error(f"{name} (shape {tuple(a.shape)}, strides {tuple(a.strides)}) is not contiguous: it is updated "
                    "in place through a flat view, which needs C- or Fortran-ordered memory")
    return (a.reshape(-1) if torch_interop.is_torch(a) else a.ravel()), "C"


def writable_float(x, label: str, what: str):
    """(flat writable view, order, dtype name) of an array updated in place; `what` says by whom, for errors."""
    a = as_array(x, label)
    d = dtype_name(a, label)
    if d not in FLOATS:
        raise error(f"{what}: {label} has dtype {d}: expected a floating-point dtype ({', '.join(FLOATS)})",
                    DTypeError)
    if isinstance(a, np.ndarray) and not a.flags.writeable:
        raise error(f"{what}: {label} is read-only: it is updated in place")
    f, order = flat(a, label, writable=True)
    return f, order, d


def flat_like(g, order: str):
    """A gradient's elements in the order of its parameter's flat view (a copy when it has other strides)."""
    if torch_interop.is_torch(g):
        return g.reshape(-1)
    return g.reshape(-1, order=order)


def zeros(like, n: int, dtype: str):
    """n zeros of `dtype` ("f32" / "f64" / "i64") where `like` lives (NumPy, CuPy or torch)."""
    k = kind(like)
    if k == "numpy":
        return np.zeros(n, dt.by_name(dtype).to_numpy())
    if k == "torch":
        import torch
        return torch.zeros(n, dtype={"f32": torch.float32, "f64": torch.float64, "i64": torch.int64}[dtype],
                           device=like.device)
    import cupy
    return cupy.zeros(n, dt.by_name(dtype).to_numpy())


def to_host(a) -> np.ndarray:
    if isinstance(a, np.ndarray):
        return a
    if torch_interop.is_torch(a):
        return a.detach().cpu().numpy()
    return a.get()


def from_host(x: np.ndarray, like):
    """A copy of the host array `x` where `like` lives."""
    k = kind(like)
    if k == "numpy":
        return np.array(x)
    if k == "torch":
        import torch
        return torch.from_numpy(np.ascontiguousarray(x)).to(like.device)
    import cupy
    return cupy.asarray(x)


class Plan:
    """The flat block layout of one launch over tensors of these sizes: program b updates elements
    [(b − starts[i])·BLOCK, +BLOCK) of tensor i, where starts[i] <= b < starts[i + 1]."""

    def __init__(self, sizes, like):
        blocks = [-(-int(n) // BLOCK) for n in sizes]
        host = np.concatenate([[0], np.cumsum(blocks)]).astype(np.int64)
        self.programs = int(host[-1])
        self.steps = max(0, (len(sizes) - 1).bit_length())   # ceil(log2(len))
        self.starts = from_host(host, like)
        self.like = like


_COMPILED = {}


def compiled_count() -> int:
    """How many (kernel, target, list lengths) variants this process compiled for tessera.optim."""
    return len(_COMPILED)


def launch(kernel, plan: Plan, lists, tensors=(), scalars=()):
    """One launch of a generated kernel: `lists` (lists of flat arrays, all of `plan`'s sizes), then
    per-launch tensors (the plan's table goes first) and runtime scalars. Compiles on first use per
    (kernel, target, lengths, 32-bit indexing) and reuses that compiled kernel afterwards."""
    from ..frontend.kernel import _reraise
    from ..frontend.kernel_args import _array_arg
    from ..runtime.cuda import small_tensor
    try:
        if plan.programs == 0:
            return
        raw = [plan.starts, *tensors]
        values = {p.name: v for p, v in zip(kernel.params, [*lists, *raw])}
        target = kernel.target_for(values)
        # as the frontend passes them: list elements as they are (the launcher writes their table), tensors
        # through _array_arg (torch CUDA tensors as device views)
        lists = [list(lst) for lst in lists]
        tensors = [_array_arg(p.name, a) for p, a in zip(kernel.params[len(lists):], raw)]
        largest = [max(lst, key=lambda a: int(np.prod(a.shape))) for lst in lists]
        views = [_array_arg(f"{kernel.__name__} list {k}", a) for k, a in enumerate(largest)]
        small = tuple(target != "cpu" and small_tensor(v.shape, v.strides, v.itemsize) for v in views)
        key = (kernel.__name__, id(kernel), target, tuple(len(x) for x in lists), small)
        ck = _COMPILED.get(key)
        if ck is None:
            from .. import compile as ts_compile
            examples = [[a] * len(lst) for a, lst in zip(largest, lists)]
            ck = ts_compile(kernel, *examples, *raw, *scalars, target=target, STEPS=plan.steps)
            _COMPILED[key] = ck
        kernel._launch(ck, (plan.programs,), [*lists, *tensors, *scalars])
    except TesseraError as e:
        _reraise(e)


def check_finite_scalar(value, name: str, low=0.0, high=math.inf, high_open=False):
    """A hyper-parameter: a real number in [low, high] (or [low, high)), else a CompilationError."""
    from ..errors import CompilationError
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise error(f"{name} must be a number, got {type(value).__name__}", CompilationError) from None
    if isinstance(value, bool) or not (low <= v <= high) or (high_open and v >= high) or math.isnan(v):
        span = f"[{low}, {high})" if high_open else f"[{low}, {high}]"
        raise error(f"invalid {name}: {value!r} (expected a value in {span})", CompilationError)
    return v
