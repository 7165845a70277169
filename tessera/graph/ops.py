"""What each ts.* / ts.ops.* call records while a @ts.function is traced (IMPLS), and the tracer
entry point. Elementwise math is arith/math on tensors; GDN ops are `ts` dialect ops."""
from __future__ import annotations

import math

import numpy as np
from mlir import ir
from mlir.dialects import arith, func, math as mmath, tensor

from .. import dtypes as dt
from ..errors import CompilationError, GraphBreak
from ..frontend import dsl
from ..frontend.function import GraphTensor, user_frame

IMPLS = {}


def impl(*names):
    def deco(f):
        for n in names:
            IMPLS[n] = f
        return f
    return deco


def _tracer():
    return dsl.TRACING[-1]


def _err(msg):
    return CompilationError(msg, *user_frame())


def mlir_elem(d):
    return {"f32": ir.F32Type.get, "f16": ir.F16Type.get, "bf16": ir.BF16Type.get, "f64": ir.F64Type.get}.get(
        d.mlir, lambda: ir.Type.parse(d.mlir))()


def ttype(shape, d):
    return ir.RankedTensorType.get(list(shape), mlir_elem(d)) if shape is not None else mlir_elem(d)


def _create(name, result_type, operands, attributes=None):
    return ir.Operation.create(name, results=[result_type], operands=list(operands),
                               attributes=attributes or {}, loc=_tracer().loc()).result


def _attr_scalar(v, d):
    return ir.FloatAttr.get(mlir_elem(d), float(v)) if d.is_float else ir.IntegerAttr.get(mlir_elem(d), int(v))


def const(v, shape, d):
    with _tracer().loc():
        if shape is None:
            return GraphTensor(arith.ConstantOp(mlir_elem(d), _attr_scalar(v, d)).result, None, d)
        t = ttype(shape, d)
        return GraphTensor(arith.ConstantOp(t, ir.DenseElementsAttr.get_splat(t, _attr_scalar(v, d))).result, shape, d)


def from_numpy(a):
    if isinstance(a, GraphTensor):
        return a
    a = np.asarray(a)
    try:
        d = dt.from_numpy(a.dtype)
    except KeyError:
        from ..errors import DTypeError
        raise DTypeError(f"an array of dtype {a.dtype} cannot be a graph constant", *user_frame()) from None
    t = ttype(a.shape, d)
    data = a.astype(np.float32) if d in (dt.bf16, dt.f16) else a
    with _tracer().loc():
        if d in (dt.bf16, dt.f16):
            f32 = ir.RankedTensorType.get(list(a.shape), ir.F32Type.get())
            c = arith.ConstantOp(f32, ir.DenseElementsAttr.get(np.ascontiguousarray(data), type=f32)).result
            return GraphTensor(arith.TruncFOp(t, c).result, a.shape, d)
        return GraphTensor(arith.ConstantOp(t, ir.DenseElementsAttr.get(np.ascontiguousarray(data), type=t)).result,
                           a.shape, d)


def constants(obj):
    """Arrays among a traced call's arguments (a closure's weights, an object's attribute) as graph constants:
    their values are baked into the graph, as JAX bakes closed-over arrays."""
    def bake(x):
        if not isinstance(x, np.ndarray):
            return x
        baked = getattr(_tracer(), "baked", None)
        if baked is not None:   # the graph is valid while these arrays keep their contents (Traced.still_valid)
            baked.append((x, _digest(x)))
        return from_numpy(x)
    return dsl.tree_map(bake, obj)


def _digest(a):
    import hashlib
    return hashlib.blake2b(np.ascontiguousarray(a).view(np.uint8).data, digest_size=16).digest()


def cast(x: GraphTensor, d):
    if x.dtype is d:
        return x
    return GraphTensor(_create("ts.cast", ttype(x.shape, d), [x.v]), x.shape, d, _zero_d(x))


def broadcast_shape(a, b):
    a, b = list(a), list(b)
    n = max(len(a), len(b))
    a, b = [1] * (n - len(a)) + a, [1] * (n - len(b)) + b
    out = []
    for x, y in zip(a, b):
        if x != y and 1 not in (x, y):
            raise _err(f"shapes {a} and {b} do not broadcast")
        out.append(max(x, y) if 1 in (x, y) else x)
    return tuple(out)


def broadcast(x: GraphTensor, shape):
    if x.shape == tuple(shape):
        return x
    return GraphTensor(_create("ts.broadcast", ttype(shape, x.dtype), [x.v]), shape, x.dtype)


def _unify(a, b):
    if not isinstance(a, GraphTensor) and not isinstance(b, GraphTensor):
        raise _err("graph ops need at least one tensor operand")
    if not isinstance(a, GraphTensor):
        a = const(a, None, b.dtype if b.dtype.is_float or isinstance(a, int) else dt.f32)
    if not isinstance(b, GraphTensor):
        b = const(b, None, a.dtype if a.dtype.is_float or isinstance(b, int) else dt.f32)
    d = dt.promote(a.dtype, b.dtype)
    a, b = cast(a, d), cast(b, d)
    if a.shape is None and b.shape is None:
        return a, b, None
    shape = broadcast_shape(a.shape or (), b.shape or ())
    return broadcast(a, shape), broadcast(b, shape), shape


_ARITH = {"ts.add": (arith.AddFOp, arith.AddIOp), "ts.subtract": (arith.SubFOp, arith.SubIOp),
          "ts.multiply": (arith.MulFOp, arith.MulIOp), "ts.divide": (arith.DivFOp, arith.DivSIOp),
          "ts.maximum": (arith.MaximumFOp, arith.MaxSIOp), "ts.minimum": (arith.MinimumFOp, arith.MinSIOp)}


def _zero_d(*xs):
    """Whether arithmetic on these operands stays a 0-d value: every tensor among them is one."""
    ts_ = [x for x in xs if isinstance(x, GraphTensor) and x.shape is not None]
    return bool(ts_) and all(x.zero_d for x in ts_)


def _binary(name):
    def f(a, b, precision=None):
        if precision == "high":  # accumulate in f32 whatever the storage dtype
            a = cast(a, dt.f32) if isinstance(a, GraphTensor) else a
            b = cast(b, dt.f32) if isinstance(b, GraphTensor) else b
        elif precision not in (None, "default"):
            raise _err(f"precision must be 'high' or 'default', got {precision!r}")
        zero_d = _zero_d(a, b)
        a, b, shape = _unify(a, b)
        fop, iop = _ARITH[name]
        with _tracer().loc():
            return GraphTensor((fop if a.dtype.is_float else iop)(a.v, b.v).result, shape, a.dtype, zero_d)
    return f


for _n in _ARITH:
    IMPLS[_n] = _binary(_n)


def _unary(opcls):
    def f(x):
        if not isinstance(x, GraphTensor):
            return getattr(math, opcls.__name__[:-2].lower())(x)
        if not x.dtype.is_float:
            x = cast(x, dt.f32)
        with _tracer().loc():
            return GraphTensor(opcls(x.v).result, x.shape, x.dtype, _zero_d(x))
    return f


IMPLS["ts.exp"] = IMPLS["ops.exp"] = _unary(mmath.ExpOp)
IMPLS["ts.log"] = IMPLS["ops.log"] = _unary(mmath.LogOp)
IMPLS["ts.sqrt"] = IMPLS["ops.sqrt"] = _unary(mmath.SqrtOp)
IMPLS["ts.tanh"] = IMPLS["ops.tanh"] = _unary(mmath.TanhOp)


@impl("ts.sigmoid", "ops.sigmoid", "ops.sigmoid_safe")
def _sigmoid(x):
    if not isinstance(x, GraphTensor):
        return 1.0 / (1.0 + math.exp(-x))
    if not x.dtype.is_float:
        x = cast(x, dt.f32)
    if x.shape is None:
        neg = IMPLS["ts.multiply"](x, -1.0)
        return IMPLS["ts.divide"](1.0, IMPLS["ts.add"](IMPLS["ts.exp"](neg), 1.0))
    return GraphTensor(_create("ts.sigmoid", ttype(x.shape, x.dtype), [x.v]), x.shape, x.dtype, _zero_d(x))


@impl("ts.cast")
def _cast(x, dtype):
    return cast(x, dtype)


@impl("ts.zeros_like")
def _zeros_like(x, dtype=None):
    return const(0, x.shape, dtype or x.dtype)


@impl("ts.ones_like")
def _ones_like(x, dtype=None):
    return const(1, x.shape, dtype or x.dtype)


@impl("ts.gemm")
def _gemm(a, b):
    if a.ndim < 2 or b.ndim < 2 or a.shape[-1] != b.shape[-2]:
        raise _err(f"ts.gemm: shapes {list(a.shape)} and {list(b.shape)} do not multiply")
    batch = broadcast_shape(a.shape[:-2], b.shape[:-2])
    shape = batch + (a.shape[-2], b.shape[-1])
    d = dt.f64 if a.dtype is dt.f64 and b.dtype is dt.f64 else dt.f32   # f32 accumulation, f64 for f64
    return GraphTensor(_create("ts.gemm", ttype(shape, d), [a.v, b.v]), shape, d)


def _axis(axis, nd):
    if not -nd <= axis < nd:
        raise _err(f"axis {axis} out of range for rank {nd}")
    return axis % nd


def _reduce(kind):
    def f(x, axis=None, keepdims=False):
        if isinstance(x, (list, tuple)):  # ts.sum([t0, t1, ...], axis=0): over a stack of the list
            if axis not in (0, None):
                raise _err(f"ts.{kind} of a list reduces over the list (axis=0), got axis={axis}")
            x, axis = _stack(list(x), 0), 0
        axes = list(range(x.ndim)) if axis is None else [_axis(a, x.ndim) for a in (axis if isinstance(axis, (list, tuple)) else [axis])]
        if len(set(axes)) == x.ndim and not keepdims and x.ndim:   # over every element: a 0-d value (traced as
            r = f(_flat(x), -1)                                       # a 1-element tensor, returned 0-d)
            r.zero_d = True
            return r
        if len(set(axes)) > 1:   # one axis at a time, the last first (a mean of equal-sized means is the mean)
            for a in sorted(set(axes), reverse=True):
                x = f(x, a, keepdims)
            return x
        shape = tuple((1 if i in axes else s) for i, s in enumerate(x.shape)) if keepdims else \
            tuple(s for i, s in enumerate(x.shape) if i not in axes)
        d = x.dtype if x.dtype.is_float and x.dtype.bits >= 32 or not x.dtype.is_float else dt.f32
        res = ttype(shape, d) if shape else mlir_elem(d)
        v = _create("ts.reduce", res, [x.v], {"kind": ir.StringAttr.get(kind), "axes": ir.DenseI64ArrayAttr.get(axes),
                                              "keepdims": ir.BoolAttr.get(bool(keepdims))})
        return GraphTensor(v, shape if shape else None, d)
    return f


IMPLS["ts.sum"] = _reduce("sum")
IMPLS["ts.mean"] = _reduce("mean")
IMPLS["ts.max"] = _max = _reduce("max")
IMPLS["ts.min"] = _reduce("min")


@impl("ts.transpose")
def _transpose(x, perm=None, axis2=None):
    if axis2 is not None:  # ts.transpose(x, a, b): swap two axes (the seeds' spelling)
        a, b = _axis(perm, x.ndim), _axis(axis2, x.ndim)
        perm = list(range(x.ndim))
        perm[a], perm[b] = perm[b], perm[a]
    perm = list(perm) if perm is not None else list(range(x.ndim))[::-1]
    shape = tuple(x.shape[p] for p in perm)
    return GraphTensor(_create("ts.transpose", ttype(shape, x.dtype), [x.v], {"perm": ir.DenseI64ArrayAttr.get(perm)}),
                       shape, x.dtype)


@impl("ts.reshape")
def _reshape(x, shape):
    shape = tuple(shape)
    if -1 in shape:
        known = int(np.prod([s for s in shape if s != -1]))
        shape = tuple(int(np.prod(x.shape)) // known if s == -1 else s for s in shape)
    if int(np.prod(shape)) != int(np.prod(x.shape)):
        raise _err(f"ts.reshape: cannot reshape {list(x.shape)} to {list(shape)}")
    return GraphTensor(_create("ts.reshape", ttype(shape, x.dtype), [x.v]), shape, x.dtype)


@impl("ts.concatenate")
def _concatenate(xs, axis=0):
    xs = list(xs)
    if not xs or not all(isinstance(x, GraphTensor) and x.shape is not None for x in xs):
        raise _err("ts.concatenate / ts.stack take a non-empty list of tensors")
    ax0 = _axis(axis, xs[0].ndim)
    for x in xs[1:]:
        if x.ndim != xs[0].ndim or any(a != b for i, (a, b) in enumerate(zip(x.shape, xs[0].shape)) if i != ax0):
            raise _err(f"ts.concatenate: shapes {list(xs[0].shape)} and {list(x.shape)} differ outside axis {axis}")
    d = xs[0].dtype
    for x in xs[1:]:
        d = dt.promote(d, x.dtype)
    xs = [cast(x, d) for x in xs]
    ax = _axis(axis, xs[0].ndim)
    out = xs[0]
    for x in xs[1:]:  # a chain of two-operand concatenations (see ts_dialect)
        shape = list(out.shape)
        shape[ax] += x.shape[ax]
        out = GraphTensor(_create("ts.concatenate", ttype(shape, d), [out.v, x.v], {"axis": ir.IntegerAttr.get(
            ir.IntegerType.get_signless(64), ax)}), tuple(shape), d)
    return out


@impl("ts.stack")
def _stack(xs, axis=0):
    xs = list(xs)
    if not xs or not all(isinstance(x, GraphTensor) and x.shape is not None for x in xs):
        raise _err("ts.stack takes a non-empty list of tensors")
    if any(x.shape != xs[0].shape for x in xs):
        raise _err(f"ts.stack: the tensors' shapes differ ({[list(x.shape) for x in xs]})")
    ax = _axis(axis, xs[0].ndim + 1)
    return _concatenate([_reshape(x, x.shape[:ax] + (1,) + x.shape[ax:]) for x in xs], ax)


@impl("ops.softmax", "ops.softmax_safe", "ts.softmax")
def _softmax(x, axis=-1):
    x = cast(x, dt.f32) if x.dtype.bits < 32 else x
    return GraphTensor(_create("ts.softmax", ttype(x.shape, x.dtype), [x.v], {"axis": ir.IntegerAttr.get(
        ir.IntegerType.get_signless(64), _axis(axis, x.ndim))}), x.shape, x.dtype)


@impl("ops.l2_norm")
def _l2_norm(x, axis=None, keepdims=False):
    """‖x‖₂ along `axis`; with no axis over every element (NumPy's norm of the flattened array), as a
    1-element tensor (graph reductions keep a dim; keepdims gives the input's rank of ones)."""
    if axis is None:
        r = _l2_norm(_flat(x), axis=-1)
        r.zero_d = not keepdims
        return _reshape(r, (1,) * x.ndim) if keepdims else r
    ax = _axis(axis, x.ndim)
    shape = tuple((1 if i == ax else s) for i, s in enumerate(x.shape)) if keepdims else \
        tuple(s for i, s in enumerate(x.shape) if i != ax)
    d = dt.f64 if x.dtype is dt.f64 else dt.f32
    return GraphTensor(_create("ts.l2_norm", ttype(shape, d), [x.v], {
        "axis": ir.IntegerAttr.get(ir.IntegerType.get_signless(64), ax), "keepdims": ir.BoolAttr.get(bool(keepdims))}),
        shape, d)


@impl("ts.graph_constant")
def _graph_constant(a):
    return from_numpy(a)


@impl("ts.expand_dims")
def _expand_dims(x, axis):
    ax = _axis(axis, x.ndim + 1)
    return _reshape(x, x.shape[:ax] + (1,) + x.shape[ax:])


def _slice(x, idx):
    """x[..., a:b, i]: a ts.slice (unit steps); int indices drop their dim."""
    if Ellipsis in idx:
        k = idx.index(Ellipsis)
        idx = idx[:k] + (slice(None),) * (x.ndim - len(idx) + 1) + idx[k + 1:]
    idx = idx + (slice(None),) * (x.ndim - len(idx))
    if len(idx) != x.ndim:
        raise _err(f"too many indices for a rank-{x.ndim} tensor")
    offsets, sizes, squeeze = [], [], []
    for i, n in zip(idx, x.shape):
        if isinstance(i, slice):
            lo, hi, step = i.indices(n)
            if step != 1 or hi <= lo:
                raise _err("graph slices need unit steps and a non-empty range")
            offsets.append(lo)
            sizes.append(hi - lo)
            squeeze.append(0)
        elif isinstance(i, (int, np.integer)):
            if not -n <= i < n:
                raise _err(f"index {i} out of range for a dim of size {n}")
            offsets.append(int(i) % n)
            sizes.append(1)
            squeeze.append(1)
        else:
            raise _err(f"unsupported index {i!r} (ints, slices and ... only)")
    shape = tuple(s for s, q in zip(sizes, squeeze) if not q)
    if x.ndim == 1 and shape:   # a range of a vector: sliced as one row (the executor's slices are 2- to 4-d)
        row = _slice(_reshape(x, (1, x.shape[0])), (slice(0, 1), idx[0]))
        return _reshape(row, shape)
    return GraphTensor(_create("ts.slice", ttype(shape, x.dtype), [x.v], {
        "offsets": ir.DenseI64ArrayAttr.get(offsets), "sizes": ir.DenseI64ArrayAttr.get(sizes),
        "squeeze": ir.DenseI64ArrayAttr.get(squeeze)}), shape, x.dtype)


def index(x: GraphTensor, idx):
    idx = idx if isinstance(idx, tuple) else (idx,)
    if len(idx) != x.ndim or not all(isinstance(i, (int, np.integer)) for i in idx):
        return _slice(x, idx)
    ids = []
    for i, n in zip(idx, x.shape):
        if not -n <= i < n:
            raise _err(f"index {i} out of range for a dim of size {n}")
        ids.append(i % n)
    with _tracer().loc():
        cs = [arith.ConstantOp(ir.IndexType.get(), i).result for i in ids]
        return GraphTensor(tensor.ExtractOp(x.v, cs).result, None, x.dtype)


class Traced:
    """A traced graph: the module (its text is `.asm["ts"]`), argument and result layout."""

    def __init__(self, tracer, module, arg_layout, result_layout, scalar_results=()):
        self.tracer, self.module, self.arg_layout, self.result_layout = tracer, module, arg_layout, result_layout
        self.baked = list(getattr(tracer, "baked", ()))   # (array, digest) of the arrays baked in as constants
        self.scalar_results = tuple(scalar_results)   # results returned as 0-d arrays (traced as 1-element tensors)
        self.asm = module.operation.get_asm(enable_debug_info=True)

    def still_valid(self) -> bool:
        """The arrays baked in as constants still hold what they held when traced (else: trace again)."""
        return all(_digest(a) == d for a, d in self.baked)


def trace_function(gf, sig):
    from ..frontend.function import Tracer, dtype_of_array
    from ..nn.module import bind_parameters, module_inputs
    tr = Tracer(gf.__name__)
    tr.function = gf
    tr.baked = []
    with tr:
        module = ir.Module.create()
        types, layout, labels = [], [], []
        for name, kind, v in sig.items:
            if kind == "tensor":
                arrays, names = [v], [name]
            elif kind == "list":
                arrays, names = v, [f"{name}[{j}]" for j in range(len(v))]
            elif kind == "module":   # a ts.Module: one input per parameter, named by its attribute path
                names, arrays = module_inputs(v, name)
            else:
                continue
            types += [ttype(x.shape, dtype_of_array(x)) for x in arrays]
            labels += names
            layout.append((name, len(arrays)))
        with ir.InsertionPoint(module.body), tr.loc():
            f = func.FuncOp(gf.__name__, (types, []))
            f.attributes["tessera.function"] = ir.UnitAttr.get()
            f.attributes["tessera.arg_names"] = ir.ArrayAttr.get([ir.StringAttr.get(x) for x in labels])
            entry = f.add_entry_block()
        args = iter(entry.arguments)
        kwargs, bound = {}, {}
        with ir.InsertionPoint(entry):
            for name, kind, v in sig.items:
                if kind == "tensor":
                    kwargs[name] = GraphTensor(next(args), v.shape, dtype_of_array(v))
                elif kind == "list":
                    kwargs[name] = [GraphTensor(next(args), x.shape, dtype_of_array(x)) for x in v]
                elif kind == "module":
                    kwargs[name] = v
                    for a in v.parameters():
                        bound[id(a)] = GraphTensor(next(args), a.shape, dtype_of_array(a))
                elif kind == "bound":
                    kwargs[name] = [from_numpy(x) for x in v] if isinstance(v, (list, tuple)) else from_numpy(v)
                else:
                    kwargs[name] = v
            with bind_parameters(bound):
                out = gf.fn(**kwargs)
            outs = list(out) if isinstance(out, (tuple, list)) else [out]
            scalars = []
            zero_d = _zero_d_returns(gf.fn, len(outs))
            for i, o in enumerate(outs):
                if isinstance(o, GraphTensor) and o.shape == (1,) and (zero_d[i] or o.zero_d):   # Tensor[(), ...]
                    scalars.append(i)
                    continue
                if isinstance(o, bool):   # a Python bool (seed 000's checkpointing policy): a bool 0-d result
                    o = const(o, None, dt.bool_)
                elif isinstance(o, (int, float)):   # a Python number: an f32 0-d result
                    o = const(float(o), None, dt.f32)
                if isinstance(o, GraphTensor) and o.shape is None:   # a scalar: a 0-d result, traced as 1 element
                    outs[i] = IMPLS["ts.add"](const(0, (1,), o.dtype), o)
                    scalars.append(i)
                elif not isinstance(o, GraphTensor):
                    raise GraphBreak(f"{gf.__name__} returns {type(o).__name__} values, which a graph cannot "
                                     "(tensors and scalars)", *user_frame())
            with tr.loc():
                func.ReturnOp([o.v for o in outs])
        f.attributes["function_type"] = ir.TypeAttr.get(ir.FunctionType.get(types, [o.v.type for o in outs]))
        module.operation.verify()
        return Traced(tr, module, layout, "tuple" if isinstance(out, (tuple, list)) else "single", scalars)


def _shape_arg(shape, name):
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    if not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape):
        raise _err(f"ts.{name}: the shape must be positive ints known when tracing, got {list(shape)}")
    return shape


@impl("ts.zeros")
def _zeros(shape, dtype=dt.f32):
    return const(0, _shape_arg(shape, "zeros"), dtype)


@impl("ts.ones")
def _ones(shape, dtype=dt.f32):
    return const(1, _shape_arg(shape, "ones"), dtype)


@impl("ts.arange")
def _arange(start, stop=None, step=1, dtype=dt.i32):
    """NumPy's arange of trace-time numbers, as a graph constant of `dtype` (default i32)."""
    if stop is None:
        start, stop = 0, start
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (start, stop, step)) or step == 0:
        raise _err(f"ts.arange: start, stop and step must be numbers known when tracing, step != 0; got "
                   f"{start!r}, {stop!r}, {step!r}")
    values = np.arange(start, stop, step)
    if values.size == 0:
        raise _err(f"ts.arange({start}, {stop}, {step}) is empty")
    return cast(from_numpy(values.astype(np.float64 if dtype.is_float else np.int64)), dtype)


@impl("ts.diag")
def _diag(x):
    """NumPy's diag: a vector → the square matrix with it on the diagonal; a square matrix → its diagonal."""
    if x.shape is None or x.ndim not in (1, 2) or (x.ndim == 2 and x.shape[0] != x.shape[1]):
        raise _err(f"ts.diag takes a vector or a square matrix, got shape {list(x.shape or ())}")
    n = x.shape[0]
    eye = cast(from_numpy(np.eye(n, dtype=np.float32)), x.dtype)
    if x.ndim == 1:
        return IMPLS["ts.multiply"](_reshape(x, (1, n)), eye)
    return IMPLS["ts.sum"](IMPLS["ts.multiply"](x, eye), axis=1)


def _zero_d_returns(fn, n):
    """Per result: whether the return annotation declares a 0-d tensor (`-> Tensor[(), ts.f32]`)."""
    from ..frontend.annotations import TensorSpec
    ann = getattr(fn, "__annotations__", {}).get("return")
    if isinstance(ann, str):
        try:
            ann = eval(ann, fn.__globals__)  # noqa: S307 - the user's own annotation
        except Exception:  # noqa: BLE001 - an annotation we cannot evaluate says nothing
            ann = None
    items = list(getattr(ann, "__args__", ())) if getattr(ann, "__origin__", None) is tuple else [ann]
    return [isinstance(a, TensorSpec) and a.dims == () for a in items] + [False] * max(0, n - len(items))


def _flat(x):
    """x as one row (1, n): a whole-tensor reduction over its last axis is a 1-element tensor."""
    n = 1
    for d in x.shape:
        n *= d
    return _reshape(x, (1, n))


class AtIndexer:
    """`x.at[idx]`: `.set(v)` / `.add(v)` give a new tensor with the elements `idx` selects (ints and slices
    known when tracing, NumPy basic indexing) replaced by / increased by `v` (a number or a traced scalar).
    Traced as a blend with a 0/1 constant of x's shape, computed in f32 (f64 for f64) and cast back to x's dtype."""

    def __init__(self, x):
        self.x = x

    def __getitem__(self, idx):
        return _AtUpdate(self.x, idx if isinstance(idx, tuple) else (idx,))


class _AtUpdate:
    def __init__(self, x, idx):
        self.x, self.idx = x, idx

    def _mask(self):
        if self.x.shape is None:
            raise _err("x.at[...] needs a tensor, not a scalar")
        if not all(isinstance(i, (int, slice)) and not isinstance(i, bool) for i in self.idx):
            raise _err(f"x.at[...] takes ints and slices known when tracing, got {self.idx!r}")
        m = np.zeros(self.x.shape, np.float64 if self.x.dtype is dt.f64 else np.float32)
        try:
            m[self.idx] = 1.0
        except IndexError as e:
            raise _err(f"x.at[{self.idx}]: {e}") from None
        return from_numpy(m)

    def _blend(self, v, keep_old):
        m = self._mask()
        acc = dt.f64 if self.x.dtype is dt.f64 else dt.f32
        xf = cast(self.x, acc)
        vf = float(v) if isinstance(v, (bool, int, float)) else cast(v, acc)
        if keep_old:      # add: x + v·m
            out = IMPLS["ts.add"](xf, IMPLS["ts.multiply"](m, vf))
        else:             # set: x·(1 − m) + v·m
            out = IMPLS["ts.add"](IMPLS["ts.multiply"](xf, IMPLS["ts.subtract"](1.0, m)), IMPLS["ts.multiply"](m, vf))
        return cast(out, self.x.dtype)

    def set(self, v):
        return self._blend(v, False)

    def add(self, v):
        return self._blend(v, True)


from . import ops_nn  # noqa: E402,F401 - registers the ts.ops network helpers in IMPLS
