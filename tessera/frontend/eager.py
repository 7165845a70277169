"""Eager @ts.function calls: the body runs op by op when it cannot be traced into one graph.

A body breaks the graph (`GraphBreak`) when Python needs a tensor's value (`if score > threshold:`,
seed 000's pruning and early exit), when it returns what a graph cannot (dicts, lists of bools, seed 000's
compressed storage), when an argument holds arrays inside other objects (a dict), or when it calls an op
that only runs eagerly (`ts.ops.svd`). The call then runs the body with `EagerTensor`s: every `ts.*` /
`ts.ops.*` call and tensor operator is a one-op @ts.function, traced, compiled and cached per op and
argument shapes like any other (so each op still runs through the compiled path), and its result is a
concrete tensor that Python may branch on. A function that broke once for a signature runs eagerly for
it from then on; `TESSERA_LOG=graph-breaks` says why (docs/guide.md, "Graph breaks").
"""
from __future__ import annotations

import sys

import numpy as np

from .. import knobs
from ..errors import CompilationError
from . import dsl

EAGER = dsl.EAGER   # non-empty while a body runs eagerly (Builtin calls dispatch here)


def is_array(v):
    return isinstance(v, np.ndarray) or hasattr(v, "__cuda_array_interface__") or type(v).__module__.startswith("torch")


class EagerTensor:
    """A concrete tensor inside an eagerly run body: NumPy-like metadata, ts operators."""

    __array_priority__ = 1000

    def __init__(self, a):
        self.a = a

    @property
    def shape(self):
        return tuple(self.a.shape)

    @property
    def ndim(self):
        return len(self.a.shape)

    @property
    def dtype(self):
        from .function import dtype_of_array
        return dtype_of_array(self.a)

    def __repr__(self):
        return f"<EagerTensor {self.dtype.name}{list(self.shape)}>"

    def __array__(self, dtype=None, copy=None):
        a = np.asarray(self.a)
        return a.astype(dtype) if dtype is not None else a

    def _op(name, swap=False):
        def f(self, other):
            return run(name, (other, self) if swap else (self, other), {})
        return f

    __add__, __radd__ = _op("ts.add"), _op("ts.add", True)
    __sub__, __rsub__ = _op("ts.subtract"), _op("ts.subtract", True)
    __mul__, __rmul__ = _op("ts.multiply"), _op("ts.multiply", True)
    __truediv__, __rtruediv__ = _op("ts.divide"), _op("ts.divide", True)
    __matmul__ = _op("ts.gemm")

    def __neg__(self):
        return run("ts.multiply", (self, -1.0), {})

    def __getitem__(self, idx):
        return run("(index)", (self, idx), {})

    @property
    def T(self):
        return run("ts.transpose", (self,), {})

    @property
    def at(self):
        return _At(self)

    # Python control flow on values: one-element tensors compare and convert like numbers
    def item(self):
        a = np.asarray(self.a, dtype=np.float64 if self.dtype.is_float else None)
        if a.size != 1:
            raise CompilationError(f"a tensor of shape {list(self.shape)} has no single value: Python control flow "
                                   "needs one element (reduce it first, e.g. ts.mean)", *_where())
        return a.reshape(()).item()

    def __bool__(self):
        return bool(self.item())

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def _compare(op):
        def f(self, other):
            other = other.item() if isinstance(other, EagerTensor) else other
            return op(self.item(), other)
        return f

    import operator as _o
    __lt__, __le__, __gt__, __ge__ = _compare(_o.lt), _compare(_o.le), _compare(_o.gt), _compare(_o.ge)
    del _o


class _At:
    def __init__(self, x):
        self.x = x

    def __getitem__(self, idx):
        x = self.x

        class _Update:
            def set(self, v):
                return run("(at.set)", (x, idx, v), {})

            def add(self, v):
                return run("(at.add)", (x, idx, v), {})
        return _Update()


def _where():
    from .function import user_frame
    return user_frame()


# -- one op, traced and compiled ------------------------------------------------------------------
def _flatten(obj, tensors):
    """obj with every tensor replaced by a slot number (tensors collects them); the rest stays."""
    if isinstance(obj, EagerTensor):
        tensors.append(obj.a)
        return _Slot(len(tensors) - 1)
    if is_array(obj):
        tensors.append(obj)
        return _Slot(len(tensors) - 1)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_flatten(x, tensors) for x in obj)
    if isinstance(obj, dict):
        return {k: _flatten(v, tensors) for k, v in obj.items()}
    return obj


class _Slot:
    __slots__ = ("i",)

    def __init__(self, i):
        self.i = i

    def __repr__(self):
        return "$%d" % self.i


def _rebuild(obj, values):
    if isinstance(obj, _Slot):
        return values[obj.i]
    if isinstance(obj, (list, tuple)):
        return type(obj)(_rebuild(x, values) for x in obj)
    if isinstance(obj, dict):
        return {k: _rebuild(v, values) for k, v in obj.items()}
    return obj


def _static_key(obj):
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__,) + tuple(_static_key(x) for x in obj)
    if isinstance(obj, dict):
        return ("dict",) + tuple(sorted((k, _static_key(v)) for k, v in obj.items()))
    if isinstance(obj, slice):
        return ("slice", obj.start if not isinstance(obj.start, _Slot) else repr(obj.start), obj.stop, obj.step)
    return (type(obj).__name__, repr(obj))


_OPS: dict = {}   # (op, static structure) -> one-op GraphFunction; the oldest go past _MAX_OPS
_MAX_OPS = 512


def _apply(name, args, kwargs):
    """The traced op: a ts builtin, an index, or an .at update (inside the one-op function's trace)."""
    from ..graph import ops as graph_ops
    if name == "(index)":
        return graph_ops.index(args[0], args[1])
    if name in ("(at.set)", "(at.add)"):
        upd = graph_ops.AtIndexer(args[0])[args[1]]
        return upd.set(args[2]) if name == "(at.set)" else upd.add(args[2])
    impl = graph_ops.IMPLS.get(name)
    if impl is None:
        raise CompilationError(f"`{name}` is not supported in @ts.function bodies yet", *_where())
    return impl(*args, **kwargs)


def run(name, args, kwargs):
    """One op on concrete tensors: a cached one-op @ts.function over the tensor arguments."""
    eager_impl = EAGER_IMPLS.get(name)
    if eager_impl is not None:
        return eager_impl(*args, **kwargs)
    tensors = []
    structure = _flatten((tuple(args), dict(kwargs)), tensors)
    key = (name, _static_key(structure))
    fn = _OPS.get(key)
    if fn is None:
        from .function import GraphFunction

        def body(xs):
            a, kw = _rebuild(structure, xs)
            return _apply(name, a, kw)
        params = ", ".join(f"t{i}" for i in range(len(tensors)))
        scope = {"body": body}
        src = f"def one_op({params}):\n    return body(({params}{',' if tensors else ''}))"
        exec(compile(src, __file__, "exec"), scope)  # noqa: S102 - errors skip it: it is "in" tessera
        one_op = scope["one_op"]   # named parameters: graph functions bind their arguments by name
        one_op.__name__ = name.replace(".", "_").strip("()")
        if len(_OPS) >= _MAX_OPS:   # Python scalars are part of the key: bound what varying ones compile
            _OPS.pop(next(iter(_OPS)))
        fn = _OPS[key] = GraphFunction(one_op)
    out = fn(*tensors)
    return wrap(out)


def wrap(out):
    return dsl.tree_map(lambda x: EagerTensor(x) if is_array(x) else x, out)


def holds_eager(obj) -> bool:
    return dsl.tree_any(lambda x: isinstance(x, EagerTensor), obj)


def unwrap(out):
    """Results for the caller: arrays, Python bools as NumPy bools, in the body's own structure."""
    return dsl.tree_map(lambda x: x.a if isinstance(x, EagerTensor) else np.bool_(x) if isinstance(x, bool) else x, out)


def call(gf, args, kwargs, reason):
    """Run `gf`'s body eagerly on these arguments."""
    if "graph-breaks" in knobs.log():
        from .function import user_frame
        file, line, _ = user_frame()
        print(f"[tessera] {gf.__name__} runs eagerly ({file}:{line}): {reason}", file=sys.stderr)
    EAGER.append(gf)
    try:
        out = gf.fn(*wrap(list(args)), **wrap(dict(kwargs)))
    finally:
        EAGER.pop()
    return unwrap(out)


# -- ops that only run eagerly ----------------------------------------------------------------------
def _svd(x, full_matrices=False):
    """ts.ops.svd(A) of an [M, N] matrix: (U [M, k], σ [k] descending, Vᵀ [k, N]), k = min(M, N), by the
    compiled one-sided Jacobi kernels of tessera.gdn.compression."""
    from ..gdn.compression import svd
    if full_matrices:
        raise CompilationError("ts.ops.svd: full_matrices=True is not supported (the thin SVD is)", *_where())
    a = x.a if isinstance(x, EagerTensor) else x
    if not is_array(a) or len(a.shape) != 2:
        raise CompilationError(f"ts.ops.svd takes a 2-d tensor, got {getattr(a, 'shape', type(a).__name__)}",
                               *_where())
    return tuple(EagerTensor(t) for t in svd(a))


EAGER_IMPLS = {"ops.svd": _svd}


