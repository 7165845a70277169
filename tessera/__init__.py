"""tessera: a Tessera-style tile DSL and compiler on MLIR.

`import tessera` does not import mlir; the compiler loads it on first use."""
from __future__ import annotations

from . import dtypes as _dtypes
from .dtypes import f32, f16, bf16, f64, fp8_e4m3, fp8_e5m2, i8, i16, i32, i64, bool_, accum, DType  # noqa: F401
from .errors import (TesseraError, CompilationError, ShapeError, DTypeError, OutOfResources,  # noqa: F401
                     BackendUnavailable, LaunchError)
from .frontend.annotations import Tensor, constexpr  # noqa: F401
from .frontend.kernel import kernel, KernelFunction  # noqa: F401
from . import tile, ops  # noqa: F401

bool = bool_  # noqa: A001 - `ts.bool` as the issue and seeds spell it

__version__ = "0.1.0"


def compile(fn, *example_args, target="cpu", **kwargs):  # noqa: A001 - the API name of DESIGN §4
    """Compile a kernel for `target` ("cpu", later "sm_80" / "sm_90a") from example arguments."""
    if isinstance(fn, KernelFunction):
        from .frontend.kernel import compile_kernel
        return compile_kernel(fn, *example_args, target=target, **kwargs)
    raise TesseraError(f"ts.compile expects a @ts.kernel, got {fn!r}")
