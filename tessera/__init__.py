"""tessera: a Tessera-style tile DSL and compiler on MLIR.

`import tessera` does not import mlir; the compiler loads it on first use."""
from __future__ import annotations

from . import dtypes as _dtypes
from .dtypes import f32, f16, bf16, f64, fp8_e4m3, fp8_e5m2, i8, i16, i32, i64, bool_, accum, DType  # noqa: F401
from .errors import (TesseraError, CompilationError, GraphBreak, ShapeError, DTypeError, OutOfResources,  # noqa: F401
                     BackendUnavailable, LaunchError, EmulatorError, SanitizerError, UnknownName,
                     DistributedError, ServeError)
from .frontend.annotations import Tensor, constexpr  # noqa: F401
from .frontend.kernel import kernel, KernelFunction  # noqa: F401
from . import tile, ops, memory  # noqa: F401
from .frontend.function import function, GraphFunction, is_training, training  # noqa: F401
from .frontend.function_options import CompilationConfig  # noqa: F401
from .graph import (subtract, add, multiply, divide, maximum, minimum, exp, log, sqrt, sigmoid, tanh,  # noqa: F401
                    cast, reshape, transpose, concatenate, stack, sum, mean, max, min, zeros_like, ones_like, gemm,
                    graph_constant, expand_dims, zeros, ones, arange, diag, softmax)

from .runtime.recompile import explain_recompiles  # noqa: F401
from .runtime.torch_interop import from_torch, to_torch  # noqa: F401 - no torch at import
from . import autodiff  # noqa: F401,E402 - ts.autodiff (no mlir at import)
from .autodiff.checkpoint import checkpoint, checkpoint_scope  # noqa: F401
from . import optim  # noqa: F401,E402 - ts.optim: SGD, AdamW, clip_grad_norm_, LossScaler (no mlir at import)
from .dist.context import distribute  # noqa: F401,E402 - ts.distribute (no torch at import)
from . import nn  # noqa: F401,E402 - ts.nn (no mlir at import)
from .nn.module import Module, export, module  # noqa: F401,E402
from .production import NumericsPolicy, optimizations  # noqa: F401,E402
from .production.compiled_module import CompiledModule  # noqa: F401,E402
from .production.package import DeploymentPackage, DeployedModel, deploy  # noqa: F401,E402
from .runtime.profiler import Profiler, synchronize, get_device_count  # noqa: F401,E402
from . import target_ir  # noqa: F401,E402


def create_mesh(devices=None, axes=("dp",), shape=None):
    """`ts.create_mesh(devices=, axes=, shape=)`: seed 002's name for tessera.dist.mesh."""
    from .dist.mesh import mesh
    return mesh(devices=devices, axes=axes, shape=shape)

jit = function

bool = bool_  # noqa: A001 - `ts.bool` as the issue and seeds spell it
# the PyTorch / NumPy spellings seed 002 uses (`Tensor["B", "S", ts.int32]`)
int32, int64, float32, float16, bfloat16 = i32, i64, f32, f16, bf16

__version__ = "0.1.0"


TARGET_ALIASES = {"sm_90": "sm_90a"}   # Hopper's name without the `a`: tessera's sm_90 code is sm_90a's


def compile(fn, *example_args, target="cpu", params=None, pipeline=None, **kwargs):  # noqa: A001 - DESIGN §4
    """Compile a @ts.kernel (or trace a @ts.function) for `target` ("cpu", "sm_80", "sm_90a")
    from example arguments; `params` binds @ts.function parameters as constants, `pipeline`
    replaces the default graph pipeline (prune + fuse). A ts.Module compiles as
    `ts.compile(module, input_shapes={...}, config=ts.CompilationConfig(...), export_formats=[...])`
    → ts.CompiledModule (tessera.production.compiled_module)."""
    if isinstance(fn, Module):
        from .production.compiled_module import compile_module
        if example_args or params is not None or pipeline is not None or target != "cpu":
            raise TesseraError("ts.compile(module, ...) takes input_shapes=, config=, export_formats=, dims=, "
                               "input_dtypes= (the target is config.target_architecture)")
        return compile_module(fn, **kwargs)
    target = TARGET_ALIASES.get(target, target)
    from .runtime import torch_interop
    example_args, _ = torch_interop.unwrap(example_args)
    if isinstance(fn, KernelFunction):
        from .frontend.kernel import compile_kernel
        return compile_kernel(fn, *example_args, target=target, **kwargs)
    from .runtime.autotune import Autotuner
    if isinstance(fn, Autotuner):
        from .frontend.kernel import compile_autotuned
        return compile_autotuned(fn, example_args, target, kwargs)
    if isinstance(fn, GraphFunction):
        from .graph.compile import compile_function
        return compile_function(fn, example_args, kwargs, target=target, params=params, pipeline=pipeline)
    raise TesseraError(f"ts.compile expects a @ts.kernel or @ts.function, got {fn!r}")


from .frontend.dsl import module_getattr as _module_getattr  # noqa: E402
__getattr__ = _module_getattr("tessera")
