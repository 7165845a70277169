"""Reverse-mode autodiff on the ts graph (DESIGN §12).

    g = autodiff.grad(loss_fn, argnums=(1, 2))      # loss_fn: a @ts.function (or a Python function) with a
    dW, db = g(x, W, b)                             # 0-d / 1-element result
    loss, dW = autodiff.value_and_grad(loss_fn, argnums=1)(x, W, b)

    @ts.jit @autodiff                               # the seeds' stacked spelling: step(...) is the loss,
    def step(x, W): ...                             # step.grad(...) / step.value_and_grad(...) its gradients

    with autodiff.gradient_tape() as tape:          # seed 000's eager form (tessera.autodiff.tape)
        tape.watch([h, W]); y = layer(h, W)
    dh, dW = tape.gradient(y, [h, W], output_gradients=dy)

The gradient is a transformation of the traced graph (tessera.autodiff.transform, one VJP rule per op in
tessera.autodiff.vjp): `ts.compile(autodiff.grad(f), *examples).asm["ts"]` is the forward and backward graph,
which the default pipeline prunes and fuses and lower-graph-to-tile turns into kernels like any other.
`argnums` follows JAX: an int gives one gradient, a tuple a tuple (even of one); a list-of-arrays argument
gets a list of gradients. Gradients come back in each argument's dtype (accumulated in f32, or f64 for f64).

Importing this module does not import mlir."""
from __future__ import annotations

import inspect
import sys
import types

from ..errors import CompilationError
from ..frontend.function import GraphFunction, Parameters, Signature, user_frame
from .tape import GradientTape, gradient_tape  # noqa: F401 - autodiff.gradient_tape()


class GradFunction(GraphFunction):
    """The gradient (or value and gradient) of a graph function, itself a graph function: called, it traces
    the function, differentiates the trace and compiles both into one plan; `ts.compile` accepts it."""

    def __init__(self, fn, argnums=0, with_value=False):
        inner = fn if isinstance(fn, GraphFunction) else None
        if inner is None and not callable(fn):
            raise CompilationError(f"autodiff: expected a @ts.function or a Python function, got {fn!r}", *user_frame())
        super().__init__(inner.fn if inner else fn, getattr(inner, "input_shapes", None), getattr(inner, "config", None))
        self.parameters = inner.parameters if inner else Parameters()
        self.argnums, self.with_value = argnums, with_value
        self._names = _argnum_names(self.fn, argnums)

    def __repr__(self):
        kind = "value_and_grad" if self.with_value else "grad"
        return f"<tessera {kind} of {self.__name__} argnums={self.argnums!r}>"

    def _key(self, sig):
        return super()._key(sig) + (("(autodiff)", self.argnums, self.with_value),)

    def trace(self, args, kwargs=None, params=None):
        from ..errors import GraphBreak
        from ..graph.ops import trace_function
        sig = Signature(self.fn, args, kwargs or {}, params)
        key = self._key(sig)
        if key in self._traced and self._traced[key].still_valid():
            return self._traced[key]
        try:
            self._traced[key] = _differentiate(self, trace_function(self, sig), sig)
        except GraphBreak as e:   # an eager run has no graph to differentiate
            raise CompilationError(f"cannot differentiate {self.__name__}: its body does not trace to one graph "
                                   f"({e.msg})", e.filename, e.line, e.col) from None
        return self._traced[key]


def _argnum_names(fn, argnums):
    params = [p for p in inspect.signature(fn).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    nums = argnums if isinstance(argnums, tuple) else (argnums,)
    if not nums or not all(isinstance(i, int) and not isinstance(i, bool) for i in nums):
        raise CompilationError(f"argnums must be an int or a non-empty tuple of ints, got {argnums!r}", *user_frame())
    names = []
    for i in nums:
        if not -len(params) <= i < len(params):
            raise CompilationError(f"argnums {i} is out of range: {fn.__name__} has {len(params)} positional "
                                   "parameters", *user_frame())
        names.append(params[i].name)
    return names


def _differentiate(gf, traced, sig):
    """The function's first argument positions per requested parameter, checks, and the rewrite."""
    from ..frontend.function import dtype_of_array
    from .transform import differentiate
    offsets, start = {}, 0
    for name, count in traced.arg_layout:
        offsets[name] = (start, count)
        start += count
    items = {name: (kind, v) for name, kind, v in sig.items}
    wrt, shape = [], []
    for name in gf._names:
        kind, v = items.get(name, (None, None))
        if name not in offsets:
            what = "a Python value" if kind in ("const", None) else "bound with params="
            raise CompilationError(f"cannot differentiate {gf.__name__} with respect to '{name}': it is {what}, not "
                                   "an array argument", *user_frame())
        lo, n = offsets[name]
        arrays = v if kind == "list" else [v]
        for j, a in enumerate(arrays):
            d = dtype_of_array(a)
            if not d.is_float:
                label = name if kind != "list" else f"{name}[{j}]"
                raise CompilationError(f"cannot differentiate {gf.__name__} with respect to '{label}': it is "
                                       f"{d.name}, and gradients are for floating-point arrays", *user_frame())
        wrt += list(range(lo, lo + n))
        shape.append((kind == "list", n))
    if traced.result_layout == "tuple":
        n_out = len(list(_return_op(traced).operands))
        if n_out != 1:
            raise CompilationError(f"cannot differentiate {gf.__name__}: it returns {n_out} values, and a gradient "
                                   "needs one scalar loss", *user_frame())
    zero_d = 0 in traced.scalar_results
    differentiate(traced, wrt, keep=(0,) if gf.with_value else (), pipeline=_graph_pipeline(gf))
    traced.asm = traced.module.operation.get_asm(enable_debug_info=True)
    traced.result_layout = "tuple"
    traced.scalar_results = (0,) if gf.with_value and zero_d else ()
    traced.pack = _packer(gf.argnums, shape, gf.with_value)
    return traced


def _graph_pipeline(gf):
    from ..graph.compile import GRAPH_PIPELINE
    return gf.config.pipeline() if gf.config is not None else GRAPH_PIPELINE


def _return_op(traced):
    from .transform import graph_func
    return list(graph_func(traced.module).regions[0].blocks[0].operations)[-1]


def _packer(argnums, shape, with_value):
    def pack(outs):
        outs = list(outs)
        value = outs.pop(0) if with_value else None
        grads = []
        for is_list, n in shape:
            grads.append(outs[:n] if is_list else outs[0])
            outs = outs[n:]
        g = tuple(grads) if isinstance(argnums, tuple) else grads[0]
        return (value, g) if with_value else g
    return pack


def grad(fn, argnums=0):
    """The gradient of `fn`'s scalar result with respect to the arguments at `argnums` (JAX's convention)."""
    return GradFunction(fn, argnums, with_value=False)


def value_and_grad(fn, argnums=0):
    """`(fn(...), grad(fn, argnums)(...))` from one compiled graph."""
    return GradFunction(fn, argnums, with_value=True)


def _mark(fn):
    """`@autodiff`: the function is differentiable; `ts.jit` of it has `.grad(...)` / `.value_and_grad(...)`
    (every graph function has them: the mark documents intent, as in the seeds)."""
    if isinstance(fn, GraphFunction) or callable(fn):
        return fn
    raise CompilationError(f"@autodiff decorates a function, got {fn!r}", *user_frame())


class _AutodiffModule(types.ModuleType):
    def __call__(self, fn):
        return _mark(fn)

    def __rmatmul__(self, decorator):
        # `@ts.jit @autodiff` on one line is the decorator expression `ts.jit @ autodiff` (PEP 614)
        return lambda fn: decorator(_mark(fn))


sys.modules[__name__].__class__ = _AutodiffModule
