"""tessera functions as torch ops with autograd (DESIGN §13).

    from tessera.integrations import torch as tst
    layer = tst.op(gdn_layer)                 # a @ts.function (or a plain function of ts ops)
    y = layer(x, w)                           # torch tensors in and out; y.backward() works
    torch.compile(model, fullgraph=True)      # the op stays one opaque node of the graph

`op(fn, **static)` registers two ops with `torch.library.custom_op`: `tessera::<name>_<k>` runs the
tessera-compiled forward graph, `tessera::<name>_<k>_vjp` the tessera-compiled backward graph (the
gradient of sum_k <output_k, dy_k> with respect to the floating-point inputs, from tessera.autodiff:
pruned, fused and lowered to kernels like any graph). The backward graph recomputes the forward values it
needs from the saved inputs (so the forward saves only its inputs, like activation checkpointing). Fake
(meta) implementations come from tracing the function, so torch.compile sees the output shapes and dtypes
without running anything.

Arguments are torch tensors or lists of torch tensors (positionally); Python values (configs, distances)
are bound once with `op(fn, name=value)`. On the CPU the tensors reach the kernels as zero-copy NumPy views
(tessera.runtime.torch_interop); CUDA tensors run on the GPU path. Shapes are static per compiled graph:
under torch.compile use `dynamic=False` (a new shape is a new tessera graph, as with a plain call)."""
from __future__ import annotations

import itertools
import re
import threading

import numpy as np
import torch

from .. import autodiff
from ..errors import CompilationError, TesseraError
from ..frontend.function import GraphFunction, user_frame
from ..runtime import torch_interop

_IDS = itertools.count()
_LOCK = threading.Lock()
_FLOAT = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


_OPS = {}   # (function, name, static arguments) -> its TorchOp: torch's registry keeps every op for good


def op(fn, name: str | None = None, **static):
    """A torch op (with autograd) that runs `fn` through tessera; `static` binds its non-tensor arguments.
    The same function, name and (hashable) bound values give the same op."""
    try:
        key = (fn, name, tuple(sorted(static.items())))
        hash(key)
    except TypeError:     # unhashable bound values: a new op each time
        return TorchOp(fn, name, static)
    with _LOCK:
        cached = _OPS.get(key)
    if cached is None:
        cached = TorchOp(fn, name, static)
        with _LOCK:
            cached = _OPS.setdefault(key, cached)
    return cached


class TorchOp:
    def __init__(self, fn, name, static):
        if not callable(fn):
            raise CompilationError(f"tessera.integrations.torch.op expects a function, got {fn!r}", *user_frame())
        self.gf = fn if isinstance(fn, GraphFunction) else GraphFunction(fn)
        self.static = dict(static)
        self.name = name
        base = re.sub(r"\W", "_", name or self.gf.__name__)
        with _LOCK:
            self.qualname = f"tessera::{base}_{next(_IDS)}"
        self._single = {}     # layout -> the function returns one tensor (not a tuple)
        self._vjps = {}       # (layout, float mask) -> the gradient GraphFunction
        self.forward_op = torch.library.custom_op(self.qualname, self._forward, mutates_args=(),
                                                  schema="(Tensor[] xs, int[] layout) -> Tensor[]")
        self.forward_op.register_fake(self._forward_fake)
        self.backward_op = torch.library.custom_op(self.qualname + "_vjp", self._backward, mutates_args=(),
                                                   schema="(Tensor[] xs, Tensor[] dys, int[] layout, int[] wrt) "
                                                          "-> Tensor[]")
        self.backward_op.register_fake(self._backward_fake)
        self.forward_op.register_autograd(self._autograd_backward, setup_context=self._setup_context)

    def __repr__(self):
        return f"<tessera torch op {self.qualname} of {self.gf.__name__}>"

    # registered torch.library objects cannot be copied: a copy is the op itself, a pickle names the function
    def __deepcopy__(self, memo):
        return self

    def __copy__(self):
        return self

    def __reduce__(self):   # by reference: the function is found again by its module and name
        fn = self.gf.fn
        return (_op_by_reference, (fn.__module__, fn.__qualname__, self.name, self.static))

    # -- the call --------------------------------------------------------------------------------------
    def __call__(self, *args):
        xs, layout = _flatten(args, self.gf.__name__)
        outs = self.forward_op(xs, layout)
        return outs[0] if self._single.get(tuple(layout), len(outs) == 1) else tuple(outs)

    def _run(self, xs, layout):
        args = _unflatten([torch_interop.host_view(x) if not x.is_cuda else x for x in xs], layout)
        return self.gf(*args, **self.static)

    def _forward(self, xs, layout):
        out = self._run(xs, layout)
        single = not isinstance(out, (tuple, list))
        self._single[tuple(layout)] = single
        return _fresh([torch_interop.to_torch(o) for o in ([out] if single else out)], xs)

    def _forward_fake(self, xs, layout):
        specs, single = self._result_specs(xs, layout)
        self._single[tuple(layout)] = single
        dev = xs[0].device if xs else torch.device("cpu")
        return [torch.empty(shape, dtype=dtype, device=dev) for shape, dtype in specs]

    def _result_specs(self, xs, layout):
        """(shape, torch dtype) of each result, from a trace of the function (nothing runs)."""
        examples = _unflatten([np.zeros(tuple(int(s) for s in x.shape), _numpy_dtype(x.dtype)) for x in xs], layout)
        specs, single = _trace_result_specs(self.gf, examples, self.static)
        return [(shape, _torch_dtype(d)) for shape, d in specs], single

    # -- autograd --------------------------------------------------------------------------------------
    @staticmethod
    def _setup_context(ctx, inputs, output):
        xs, layout = inputs
        ctx.save_for_backward(*xs)
        ctx.layout = layout
        ctx.wrt = [i for i, x in enumerate(xs) if x.requires_grad and x.dtype in _FLOAT]   # (frozen ones: none)
        ctx.outs = [(o.shape, o.dtype, o.device) for o in output]

    def _autograd_backward(self, ctx, dys):
        xs = list(ctx.saved_tensors)
        dys = [torch.zeros(s, dtype=d, device=dev) if g is None else g.contiguous()
               for g, (s, d, dev) in zip(dys, ctx.outs)]
        grads = self.backward_op(xs, dys, ctx.layout, ctx.wrt)
        wrt = set(ctx.wrt)
        return [g if i in wrt else None for i, g in enumerate(grads)], None

    def _backward(self, xs, dys, layout, wrt):
        floats = [i for i in wrt if xs[i].dtype in _FLOAT]
        grads = [torch.zeros(0, dtype=x.dtype, device=x.device) for x in xs]   # (no gradient asked for)
        if floats:
            vjp = self._vjp(tuple(layout), tuple(floats))
            views = [torch_interop.host_view(t) if not t.is_cuda else t for t in xs + dys]
            xv, dv = views[:len(xs)], views[len(xs):]
            got = vjp([xv[i] for i in floats], [v for i, v in enumerate(xv) if i not in floats], dv)
            for i, g in zip(floats, got):
                grads[i] = torch_interop.to_torch(g).reshape(xs[i].shape)
        return _fresh(grads, xs + dys)

    def _backward_fake(self, xs, dys, layout, wrt):
        return [torch.empty_like(x) if i in wrt and x.dtype in _FLOAT else torch.empty(0, dtype=x.dtype, device=x.device)
                for i, x in enumerate(xs)]

    def _vjp(self, layout, floats):
        key = (layout, floats)
        if key not in self._vjps:
            gf, static = self.gf, self.static

            def vjp(float_xs, other_xs, dys):
                it_f, it_o = iter(float_xs), iter(other_xs)
                flat = [next(it_f) if i in floats else next(it_o) for i in range(len(float_xs) + len(other_xs))]
                outs = gf(*_unflatten(flat, list(layout)), **static)
                outs = outs if isinstance(outs, (tuple, list)) else (outs,)
                total = None
                for o, dy in zip(outs, dys):
                    if o.dtype.is_float:
                        term = _sum_all(o * dy)
                        total = term if total is None else total + term
                if total is None:
                    raise CompilationError(f"{gf.__name__} has no floating-point result to differentiate",
                                           *user_frame())
                return total
            vjp.__name__ = f"{gf.__name__}_vjp"
            self._vjps[key] = autodiff.grad(vjp, argnums=0)
        return self._vjps[key]


def _trace_result_specs(gf, args, kwargs=None):
    """([(shape, tessera dtype)] of `gf`'s results, whether it returns one value) for these example
    arguments, from a trace: nothing is compiled or run (torch fake tensors, shape inference)."""
    from mlir import ir
    from ..frontend.codegen.base import dtype_of
    traced = gf.trace(list(args), kwargs or {})
    f = next(op for op in traced.module.body.operations
             if op.operation.name == "func.func" and "tessera.function" in op.attributes)
    ret = list(f.regions[0].blocks[0].operations)[-1]
    specs = []
    for i, v in enumerate(ret.operands):
        t = v.type
        if isinstance(t, ir.RankedTensorType):
            shape, elem = (() if i in traced.scalar_results else tuple(t.shape)), t.element_type
        else:
            shape, elem = (), t
        specs.append((shape, dtype_of(elem)))
    return specs, traced.result_layout == "single"


def _op_by_reference(module, qualname, name, static):
    import importlib
    fn = importlib.import_module(module)
    for part in qualname.split("."):
        fn = getattr(fn, part)
    return op(fn, name, **static)


def _sum_all(t):
    from .. import graph
    return graph.sum(t) if t.shape else t


def _flatten(args, name):
    """Positional arguments → (flat tensor list, layout): -1 for a tensor, n for a list of n tensors."""
    xs, layout = [], []
    for i, a in enumerate(args):
        if isinstance(a, torch.Tensor):
            xs.append(a)
            layout.append(-1)
        elif isinstance(a, (list, tuple)) and all(isinstance(t, torch.Tensor) for t in a):
            xs += list(a)
            layout.append(len(a))
        else:
            raise TesseraError(f"{name}: argument {i} is a {type(a).__name__}; a tessera torch op takes tensors or "
                               "lists of tensors (bind other values with op(fn, name=value))")
    return xs, layout


def _unflatten(flat, layout):
    out, k = [], 0
    for n in layout:
        if n < 0:
            out.append(flat[k])
            k += 1
        else:
            out.append(list(flat[k:k + n]))
            k += n
    return out


def _fresh(outs, inputs):
    """Results that share no memory with the inputs (a custom op may not return an alias of an input)."""
    ptrs = {t.untyped_storage().data_ptr() for t in inputs if t.numel()}
    return [o.clone() if o.numel() and o.untyped_storage().data_ptr() in ptrs else o for o in outs]


_TORCH_TO_NUMPY = {torch.float32: np.float32, torch.float64: np.float64, torch.float16: np.float16,
                   torch.int32: np.int32, torch.int64: np.int64, torch.int16: np.int16, torch.int8: np.int8,
                   torch.uint8: np.uint8, torch.bool: np.bool_}


def _numpy_dtype(d):
    if d == torch.bfloat16:
        import ml_dtypes
        return ml_dtypes.bfloat16
    if d not in _TORCH_TO_NUMPY:
        raise TesseraError(f"torch dtype {d} has no tessera dtype")
    return _TORCH_TO_NUMPY[d]


def _torch_dtype(d):
    """A tessera dtype's torch dtype."""
    return {"f32": torch.float32, "f64": torch.float64, "f16": torch.float16, "bf16": torch.bfloat16,
            "i32": torch.int32, "i64": torch.int64, "i16": torch.int16, "i8": torch.int8, "u8": torch.uint8,
            "bool": torch.bool}[d.name]


def __getattr__(attr):   # the seed's wrapper and trainer (tessera.integrations.torch_training), on first use
    if attr in ("TesseraGDNPyTorchWrapper", "GDNPyTorchTrainer"):
        from . import torch_training
        return getattr(torch_training, attr)
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
