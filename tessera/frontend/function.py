"""`@ts.function` (alias `@ts.jit`): graph-level functions, traced into the `ts` dialect.

The body runs as Python with tensor parameters replaced by GraphTensor proxies: Python control
flow over Python values unrolls, a @ts.function called from another is inlined, lists of tensors
are lists of proxies, Python scalar parameters are compile-time constants. Each traced operation
records the user's file:line as its location. `ts.compile(fn, *examples, params={...})` binds
parameters as constants; the result's `.asm["ts"]` is the graph as written."""
from __future__ import annotations

import contextlib
import inspect
import os
import sys
import threading

import numpy as np

from .. import dtypes as dt
from ..errors import TesseraError, CompilationError, DTypeError, GraphBreak
from . import dsl

_PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def user_frame():
    """(file, line, column) of the first caller frame outside the tessera package; the column is
    where the executing call starts (Python 3.11+ instruction positions), else 1."""
    f = sys._getframe(1)
    while f is not None:
        fn = os.path.abspath(f.f_code.co_filename)
        if not fn.startswith(_PKG + os.sep):
            col = 1
            try:
                pos = list(f.f_code.co_positions())[f.f_lasti // 2]
                if pos[0] == f.f_lineno and pos[2] is not None:
                    col = pos[2] + 1
            except (AttributeError, IndexError):
                pass
            return f.f_code.co_filename, f.f_lineno, col
        f = f.f_back
    return "<unknown>", 0, 1


class GraphTensor:
    """A traced value: a ranked tensor (shape tuple) or a scalar (shape None)."""

    __slots__ = ("v", "shape", "dtype", "zero_d")
    __array_priority__ = 1000  # numpy scalars on the left defer to us

    def __init__(self, v, shape, dtype, zero_d=False):
        self.v, self.shape, self.dtype = v, (tuple(shape) if shape is not None else None), dtype
        # a 0-d value traced as a 1-element tensor (a reduction over every element, a loss): returned 0-d
        self.zero_d = zero_d

    @property
    def ndim(self):
        return len(self.shape) if self.shape is not None else 0

    def __repr__(self):
        return f"<GraphTensor {self.dtype.name}{list(self.shape) if self.shape is not None else ''}>"

    def _op(name):
        def f(self, other):
            from ..graph import ops as graph_ops
            return graph_ops.IMPLS[name](self, other)
        return f

    def _rop(name):
        def f(self, other):
            from ..graph import ops as graph_ops
            return graph_ops.IMPLS[name](other, self)
        return f

    __add__, __radd__ = _op("ts.add"), _rop("ts.add")
    __sub__, __rsub__ = _op("ts.subtract"), _rop("ts.subtract")
    __mul__, __rmul__ = _op("ts.multiply"), _rop("ts.multiply")
    __truediv__, __rtruediv__ = _op("ts.divide"), _rop("ts.divide")
    __matmul__ = _op("ts.gemm")

    def __neg__(self):
        from ..graph import ops as graph_ops
        return graph_ops.IMPLS["ts.multiply"](self, -1.0)

    def __getitem__(self, idx):
        from ..graph import ops as graph_ops
        return graph_ops.index(self, idx)

    @property
    def T(self):
        """NumPy's `.T`: the axes reversed (ts.transpose with no permutation)."""
        from ..graph import ops as graph_ops
        return graph_ops.IMPLS["ts.transpose"](self)

    @property
    def at(self):
        """JAX's functional update: `mask = mask.at[i, j].set(True)` (seed 000), `x.at[0, :].add(1.0)`."""
        from ..graph import ops as graph_ops
        return graph_ops.AtIndexer(self)

    def _compare(self, other):
        raise GraphBreak("traced tensors cannot be compared in Python: a graph's control flow uses Python values "
                         "(use ts.maximum/minimum or a mask for data-dependent choices)", *user_frame())

    __lt__ = __le__ = __gt__ = __ge__ = _compare

    def __bool__(self):
        raise GraphBreak("a traced tensor has no truth value: a graph's control flow uses Python values",
                         *user_frame())

    def __float__(self):
        raise GraphBreak("float() of a traced tensor needs its value: a graph uses Python numbers", *user_frame())

    __int__ = __index__ = __float__


class Tracer:
    def __init__(self, name):
        from mlir import ir
        from ..ir import new_context
        self.ir = ir
        self.ctx = new_context()
        self.name = name
        self.stack = []

    def loc(self):
        file, line, col = user_frame()
        return self.ir.Location.file(file, line, col)

    def __enter__(self):
        self.ctx.__enter__()
        self.ir.Location.unknown().__enter__()
        dsl.TRACING.append(self)
        return self

    def __exit__(self, *exc):
        dsl.TRACING.pop()
        self.ir.Location.current.__exit__(*exc)
        self.ctx.__exit__(*exc)
        return False


class Signature:
    """How one call binds the parameters: tensors (by shape and dtype), lists of tensors, constants."""

    def __init__(self, fn, args, kwargs, params):
        sig = inspect.signature(fn)
        try:
            bound = sig.bind_partial(*args, **kwargs)
            for k, v in (params or {}).items():  # bound parameters may be left out of the call
                bound.arguments.setdefault(k, v)
            bound = sig.bind(**bound.arguments)
        except TypeError as e:
            raise CompilationError(f"{fn.__name__}(): {e}", *user_frame()) from None
        bound.apply_defaults()
        for k in (params or {}):
            if k not in bound.arguments:
                raise CompilationError(f"params: '{fn.__name__}' has no parameter '{k}'", *user_frame())
        self.items = []
        for name, v in bound.arguments.items():
            if params and name in params:
                self.items.append((name, "bound", params[name]))
            elif _is_array(v):
                self.items.append((name, "tensor", v))
            elif _is_module(v):   # a ts.Module: its parameters are graph inputs (tessera.nn.module)
                self.items.append((name, "module", v))
            elif isinstance(v, (list, tuple)) and v and all(_is_array(x) for x in v):
                self.items.append((name, "list", list(v)))
            else:
                self.items.append((name, "const", v))

    def key(self):
        out = []
        for name, kind, v in self.items:
            if kind == "tensor":
                out.append((name, kind, tuple(v.shape), str(v.dtype)))
            elif kind == "list":
                out.append((name, kind, tuple((tuple(x.shape), str(x.dtype)) for x in v)))
            elif kind == "module":   # this module object, its parameters' names, shapes and dtypes
                out.append((name, kind, id(v), tuple((n, a.shape, str(a.dtype)) for n, a in v.named_parameters())))
            elif kind == "bound":
                a = np.asarray(v)
                out.append((name, kind, a.shape, str(a.dtype), a.tobytes() if a.size < 1 << 16 else id(v)))
            else:
                out.append((name, kind, repr(v)))
        out.append(("(training)", "mode", is_training(), training_progress()))   # the body may branch on them
        out.append(("(mesh)", "dist", _mesh_key()))
        return tuple(out)

    def descriptor(self):
        """The key's parts by kind, for the recompile log (tessera.runtime.recompile)."""
        d = {"target": {}, "shape": {}, "dtype": {}, "length": {}, "param": {}}
        for name, kind, v in self.items:
            items = [(name, v)] if kind == "tensor" else [(f"{name}[{i}]", x) for i, x in enumerate(v)] \
                if kind == "list" else list(zip(*_module_inputs(v, name))) if kind == "module" else []
            if kind == "list":
                d["length"][name] = len(v)
            for n, a in items:
                d["shape"][n] = tuple(int(x) for x in a.shape)
                d["dtype"][n] = str(a.dtype)
                d["target"]["arrays"] = "numpy" if isinstance(a, np.ndarray) else "gpu"
            if kind in ("const", "bound"):
                d["param"][name] = repr(v) if kind == "const" else f"bound {np.asarray(v).shape}"
        return d

    def nested_arrays(self):
        """The name of an argument that holds arrays inside a dict or object (not a graph input), or None."""
        def holds(v, depth=0):
            if _is_array(v):
                return depth > 0
            if isinstance(v, dict):
                return any(holds(x, depth + 1) for x in v.values())
            if isinstance(v, (list, tuple)):
                return any(holds(x, depth + 1) for x in v)
            return False
        for name, kind, v in self.items:
            if kind == "const" and holds(v):
                return name
        return None

    def runtime_arrays(self):
        arrays = []
        for _, kind, v in self.items:
            if kind == "tensor":
                arrays.append(v)
            elif kind == "list":
                arrays.extend(v)
            elif kind == "module":
                arrays.extend(v.parameters())
        return arrays


def _mesh_key():
    """The current mesh as a traced graph depends on it: a collective's result shapes come from its axis
    sizes, broadcast's default src from the open device_assignment, a collective's default axis from the
    open tensor_parallel block. The mesh object itself (not just its shape) so a rebuilt mesh, whose
    process groups differ, traces its own graph."""
    from ..dist import context
    from ..dist.mesh import default_mesh
    m = context._MESHES[-1] if context._MESHES else default_mesh()
    if m is None:
        return None
    return (id(m), tuple(m.axes), tuple(m.shape), tuple(context._AXES), tuple(context._ASSIGNED))


def _is_module(v):
    from ..nn.module import Module
    return isinstance(v, Module)


def _module_inputs(v, name):
    from ..nn.module import module_inputs
    return module_inputs(v, name)


def _is_array(v):
    return isinstance(v, np.ndarray) or hasattr(v, "__cuda_array_interface__") or hasattr(v, "__dlpack_device__")


class GraphFunction:
    def __init__(self, fn, input_shapes=None, config=None):
        self.fn = fn
        self.input_shapes, self.config = input_shapes, config   # function_options
        self.__name__ = fn.__name__
        self.__doc__ = fn.__doc__
        self._traced = {}
        self._compiled = {}
        self._eager = {}   # signature key → why the body runs eagerly (a graph break)
        self.parameters = Parameters()   # ts.ops.learnable_scale_parameter() values, by name

    def __repr__(self):
        return f"<tessera function {self.__name__}>"

    def __get__(self, obj, objtype=None):
        """A @ts.jit `forward` of a ts.Module binds `self` like a method (the module is a graph input)."""
        if obj is None or not _is_module(obj):
            return self
        import functools
        return functools.partial(self, obj)

    def _key(self, sig):
        """A traced graph bakes in the parameters' values: setting one retraces."""
        return sig.key() + (("(parameters)", "version", self.parameters.version),)

    def __call__(self, *args, **kwargs):
        if dsl.TRACING:  # called from another @ts.function: inline (arrays become constants of the graph)
            from ..graph.ops import constants
            return self.fn(*constants(args), **constants(kwargs))
        if dsl.EAGER:    # called from a body running eagerly: on its concrete tensors
            from . import eager
            if eager.holds_eager((args, kwargs)):
                return eager.wrap(self(*eager.unwrap(list(args)), **eager.unwrap(dict(kwargs))))
        from ..runtime import torch_interop
        (args, kwargs), torch_in = torch_interop.unwrap((args, kwargs))
        if torch_in:   # CPU tensors run as NumPy views of their memory; the results go back as tensors
            return torch_interop.wrap(self(*args, **kwargs))
        from ..graph.compile import compile_function
        if self.input_shapes:
            from .function_options import check_input_shapes
            try:
                check_input_shapes(self.fn, self.input_shapes, args, kwargs)
            except TesseraError as e:
                from .kernel import _reraise
                _reraise(e)
        sig = Signature(self.fn, args, kwargs, None)
        key = self._key(sig)
        ck = self._compiled.get(key)
        if ck is not None and not ck.traced.still_valid():   # a baked-in array changed in place: trace again
            ck = None
            self._traced.pop(key, None)
        if ck is None and key in self._eager:
            from . import eager
            return eager.call(self, args, kwargs, self._eager[key])
        if ck is None:
            try:
                nested = sig.nested_arrays()
                if nested:
                    raise GraphBreak(f"argument '{nested}' holds arrays inside another object", *user_frame())
                ck = self._compiled[key] = compile_function(self, args, kwargs)
            except GraphBreak as e:   # the body needs Python values: run it op by op (tessera.frontend.eager)
                from . import eager
                self._eager[key] = e.msg
                return eager.call(self, args, kwargs, e.msg)
            except RecursionError:
                from .kernel import _reraise
                _reraise(CompilationError(f"{self.__name__} calls itself without end while being traced (a graph "
                                          "function cannot recurse on tensor values)", *user_frame()))
            from ..runtime import recompile
            recompile.record(self, self.__name__, sig.descriptor(), user_frame()[:2], False)
        out = ck(*args, **kwargs)
        if type(self).trace is GraphFunction.trace:   # a plain function's call, for open gradient tapes
            from ..autodiff import tape
            if tape.active_tapes():
                tape.record(self, args, kwargs, out)
        return out

    def grad(self, *args, argnums=0, **kwargs):
        """The gradient of this function's scalar result at these arguments (`tessera.autodiff.grad`)."""
        return self._autodiff(argnums, False)(*args, **kwargs)

    def value_and_grad(self, *args, argnums=0, **kwargs):
        """(result, gradient) at these arguments from one graph (`tessera.autodiff.value_and_grad`)."""
        return self._autodiff(argnums, True)(*args, **kwargs)

    def _autodiff(self, argnums, with_value):
        from ..autodiff import GradFunction
        cache = self.__dict__.setdefault("_grad_functions", {})
        key = (argnums, with_value)
        if key not in cache:
            cache[key] = GradFunction(self, argnums, with_value)
        return cache[key]

    def trace(self, args, kwargs=None, params=None):
        from ..graph.ops import trace_function
        sig = Signature(self.fn, args, kwargs or {}, params)
        key = self._key(sig)
        if key not in self._traced or not self._traced[key].still_valid():
            self._traced[key] = trace_function(self, sig)
        return self._traced[key]


class Parameters(dict):
    """A function's learnable parameters (`ts.ops.learnable_scale_parameter()`), f32 arrays by name. Created
    with their initial value the first time a trace asks for them; `fn.parameters[name] = value` sets one
    (same shape) and makes the next call retrace with it."""

    def __init__(self):
        super().__init__()
        self.version = 0

    def create(self, name, value):
        if name not in self:
            super().__setitem__(name, np.asarray(value, np.float32))
        return self[name]

    def __setitem__(self, name, value):
        if name not in self:
            raise CompilationError(f"no parameter '{name}' (the function has {sorted(self)})", *user_frame())
        try:
            v = np.asarray(value, np.float32)
        except (TypeError, ValueError) as e:
            raise CompilationError(f"parameter '{name}': {e}", *user_frame()) from None
        if v.shape != self[name].shape:
            raise CompilationError(f"parameter '{name}' has shape {self[name].shape}, got {v.shape}", *user_frame())
        super().__setitem__(name, v)
        self.version += 1


_MODE = threading.local()


def is_training() -> bool:
    """`ts.is_training()`: whether @ts.function bodies are traced in training mode (`with ts.training():`);
    a Python bool at trace time, so `if ts.is_training():` chooses what the graph contains, and the mode is
    part of the traced graph's key."""
    return getattr(_MODE, "training", False)


def training_progress() -> float:
    """`ts.ops.get_training_progress()`: the fraction of training done (0.0 to 1.0) that `with
    ts.training(progress=p):` sets (0.0 otherwise); a Python float at trace time, part of the key."""
    return getattr(_MODE, "progress", 0.0)


def training(mode: bool = True, progress: float | None = None):
    """`with ts.training():` traces and runs @ts.function calls in training mode (per thread); `progress`
    (0.0 to 1.0) is what ts.ops.get_training_progress() returns inside."""
    if progress is not None and not (isinstance(progress, (int, float)) and not isinstance(progress, bool)
                                     and 0.0 <= progress <= 1.0):
        raise CompilationError(f"ts.training(progress=...) takes a number from 0.0 to 1.0, got {progress!r}",
                               *user_frame())
    return _training(mode, progress)


@contextlib.contextmanager
def _training(mode, progress):
    before, before_progress = is_training(), training_progress()
    _MODE.training = bool(mode)
    _MODE.progress = float(progress) if progress is not None else before_progress
    try:
        yield
    finally:
        _MODE.training, _MODE.progress = before, before_progress


def function(fn=None, **options):
    """`@ts.function`, `@ts.function(input_shapes=..., compilation_config=...)` (function_options)."""
    where = user_frame()

    def make(f):
        from .function_options import check_options
        try:
            shapes, config = check_options(f, options, where)
        except TesseraError as e:
            from .kernel import _reraise
            _reraise(e)
        return GraphFunction(f, shapes, config)
    return make if fn is None else make(fn)


def dtype_of_array(a):
    if type(a).__module__.startswith("torch"):  # torch dtypes are not NumPy dtypes (bf16 included)
        name = str(a.dtype).replace("torch.", "")
        table = {"float32": dt.f32, "float16": dt.f16, "bfloat16": dt.bf16, "int32": dt.i32, "int64": dt.i64,
                 "bool": dt.bool_, "float64": dt.f64, "int8": dt.i8}
        if name not in table:
            raise TesseraError(f"unsupported torch dtype {a.dtype}")
        return table[name]
    try:
        return dt.from_numpy(a.dtype)
    except KeyError:
        raise DTypeError(f"unsupported dtype {a.dtype}", *user_frame()) from None
