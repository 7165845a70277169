"""The DSL's builtins (`tile.*`, `ts.ops.*`) and calls to plain Python functions."""
from __future__ import annotations

import math
import builtins as _py

from mlir import ir
from mlir.dialects import tensor as _tensor

from ... import dtypes as dt
from ...ir import builders as tb
from .base import INDEX, Val, mlir_type, KernelContext

_ELEMENTWISE2 = {"add": "add", "subtract": "sub", "multiply": "mul", "divide": "truediv",
                 "maximum": "max", "minimum": "min"}
_MATH1 = {"exp", "log", "sqrt", "tanh", "abs"}


def _bind(node, gen, name, params, args, kwargs):
    """Bind positional/keyword args to parameter names; params: list of (name, default|REQ)."""
    out = {}
    if len(args) > len(params):
        gen.error(node, f"{name}() takes at most {len(params)} positional arguments, got {len(args)}")
    for (p, _), a in zip(params, args):
        out[p] = a
    known = {p for p, _ in params}
    for k, v in kwargs.items():
        if k not in known:
            gen.error(node, f"{name}() got an unexpected keyword argument '{k}'")
        if k in out:
            gen.error(node, f"{name}() got multiple values for argument '{k}'")
        out[k] = v
    for p, d in params:
        if p not in out:
            if d is _REQ:
                gen.error(node, f"{name}() missing required argument '{p}'")
            out[p] = d
    return out


_REQ = object()


class Calls:
    def call_builtin(self, fn, node):
        args = [self.expr(a) for a in node.args]
        kwargs = {k.arg: self.expr(k.value) for k in node.keywords}
        ns, _, short = fn.name.partition(".")
        handler = getattr(self, f"b_{ns}_{short}", None)
        if handler is None and ns in ("tile", "ts") and short in _ELEMENTWISE2:
            return self.b_elementwise2(short, node, args, kwargs)
        if handler is None and short in _MATH1:
            a = _bind(node, self, fn.name, [("x", _REQ)], args, kwargs)
            return self.unary_math(short, a["x"], node)
        if handler is None:
            self.error(node, f"`{fn.name}` is not supported inside kernels yet")
        return handler(node, args, kwargs)

    def call_python(self, fn, args, kwargs, node):
        lists = [a for a in args if isinstance(a, Val) and a.kind == "list"]
        if lists and fn is _py.len and len(args) == 1:
            return lists[0].length   # a compile-time constant (DESIGN §4)
        if lists and fn in (enumerate, zip, list, tuple, reversed):   # Python over the list's tensors
            args = [self.list_elements(a, node) if isinstance(a, Val) and a.kind == "list" else a for a in args]
        runtime = any(isinstance(a, Val) for a in list(args) + list(kwargs.values()))
        if not runtime:
            try:
                return fn(*args, **kwargs)
            except Exception as e:  # noqa: BLE001 - a compile-time Python call failed at the user's line
                self.error(node, f"{type(e).__name__}: {e}")
        if fn in (_py.min, _py.max) and len(args) == 2 and not kwargs:
            return self.binop("min" if fn is _py.min else "max", args[0], args[1], node)
        if fn is _py.abs:
            return self.unary_math("abs", args[0], node)
        if fn is _py.float:
            return self.cast(args[0], dt.f32)
        if fn is _py.int:
            return self.cast(args[0], INDEX)
        if fn is _py.bool:
            return self.cast(args[0], dt.bool_)
        if getattr(fn, "__module__", None) == "math" and fn.__name__ in ("exp", "log", "sqrt", "tanh"):
            return self.unary_math(fn.__name__, args[0], node)
        self.error(node, f"cannot call '{getattr(fn, '__name__', fn)}' with runtime values inside a kernel")

    # -- program and context ---------------------------------------------------------------
    def b_tile_program_id(self, node, args, kwargs):
        a = _bind(node, self, "tile.program_id", [("axis", 0)], args, kwargs)
        axis = self.static_int(a["axis"], node)
        if axis not in (0, 1, 2):
            self.error(node, f"program_id axis must be 0, 1 or 2, got {axis}")
        return Val("scalar", tb.program_id(axis, self.loc(node)), INDEX)

    def b_tile_num_programs(self, node, args, kwargs):
        a = _bind(node, self, "tile.num_programs", [("axis", 0)], args, kwargs)
        axis = self.static_int(a["axis"], node)
        if axis not in (0, 1, 2):
            self.error(node, f"num_programs axis must be 0, 1 or 2, got {axis}")
        return Val("scalar", tb.num_programs(axis, self.loc(node)), INDEX)

    def b_tile_context(self, node, args, kwargs):
        return KernelContext(self)

    def b_tile_range(self, node, args, kwargs):
        self.error(node, "tile.range(...) can only be used as the iterable of a for loop")

    b_tile_static_range = b_tile_range

    # -- memory ----------------------------------------------------------------------------
    def _view_arg(self, v, node, what):
        if not isinstance(v, Val) or v.kind not in ("view", "tensor"):
            self.error(node, f"{what} expects a view of a global tensor (e.g. x[i, a:a + N])")
        if v.kind == "tensor":
            return self.make_view(v, [], node)
        return v

    def b_tile_load(self, node, args, kwargs):
        a = _bind(node, self, "tile.load", [("src", _REQ), ("mask", None), ("other", None)], args, kwargs)
        src = a["src"]
        if isinstance(src, Val) and src.kind == "shared":
            return self.read_shared(src)
        return self.load_view(self._view_arg(src, node, "tile.load"), a["mask"], a["other"], node)

    def b_tile_async_load_block(self, node, args, kwargs):
        a = _bind(node, self, "tile.async_load_block", [("src", _REQ), ("stages", 1)], args, kwargs)
        src = a["src"]
        if isinstance(src, Val) and src.kind == "tensor":   # the program's block (seed_ops.program_block)
            return self.load_view(self.program_block(src, node, "tile.async_load_block"), None, None, node)
        return self.load_view(self._view_arg(src, node, "tile.async_load_block"), None, None, node)

    def b_tile_async_wait(self, node, args, kwargs):
        tb.cp_wait_group(0, self.loc(node))

    def b_tile_load_scalar(self, node, args, kwargs):
        a = _bind(node, self, "tile.load_scalar", [("src", _REQ)], args, kwargs)
        v = self._view_arg(a["src"], node, "tile.load_scalar")
        if v.shape and all(n == 1 for n in v.shape):   # a one-element tensor or view: its element
            v = self.window(v, [0] * len(v.shape), [1] * len(v.shape), node, squeeze_first=len(v.shape))
        if v.shape:
            self.error(node, f"tile.load_scalar needs a single element (index every dim), got a view of shape {list(v.shape)}")
        return self.load_view(v, None, None, node)

    def b_tile_store(self, node, args, kwargs):
        a = _bind(node, self, "tile.store", [("dst", _REQ), ("value", _REQ), ("mask", None)], args, kwargs)
        dst = a["dst"]
        if isinstance(dst, Val) and dst.kind == "shared":
            self.write_shared(dst, a["value"], node)
            return
        self.store_view(self._view_arg(dst, node, "tile.store"), a["value"], a["mask"], node)

    def b_tile_store_global(self, node, args, kwargs):
        a = _bind(node, self, "tile.store_global", [("value", _REQ), ("dst", _REQ), ("coalesce", True), ("mask", None)], args, kwargs)
        self.store_view(self._view_arg(a["dst"], node, "tile.store_global"), a["value"], a["mask"], node)

    def b_tile_load_block(self, node, args, kwargs):
        if not args:
            self.error(node, "tile.load_block(t, i0, ..., n0, ...) needs a tensor")
        t, rest = args[0], list(args[1:])
        if not rest and isinstance(t, Val) and t.kind == "tensor":   # the program's block (seed_ops.program_block)
            return self.load_view(self.program_block(t, node, "tile.load_block"), kwargs.get("mask"),
                                  kwargs.get("other"), node)
        if len(rest) % 2:
            self.error(node, "tile.load_block(t, i0, i1, n0, n1): give as many block sizes as start indices")
        k = len(rest) // 2
        t = self._view_arg(t, node, "tile.load_block")
        starts, sizes = rest[:k], [self.static_int(n, node, "a static block size") for n in rest[k:]]
        v = self.window(t, starts, sizes, node)
        return self.load_view(v, kwargs.get("mask"), kwargs.get("other"), node)

    def b_tile_store_block(self, node, args, kwargs):
        if len(args) < 2:
            self.error(node, "tile.store_block(t, value, i0, ...) needs a tensor and a value")
        t, value, starts = args[0], args[1], list(args[2:])
        if not starts and isinstance(t, Val) and t.kind == "tensor":   # the program's block
            self.store_view(self.program_block(t, node, "tile.store_block"), value, kwargs.get("mask"), node)
            return
        t = self._view_arg(t, node, "tile.store_block")
        value = self.to_val(value)
        vshape = value.shape if value.kind == "tile" else ()
        npoint = len(t.shape) - len(vshape)
        if npoint < 0 or len(starts) > len(t.shape):
            self.error(node, f"tile.store_block: a value of shape {list(vshape)} does not fit a rank-{len(t.shape)} tensor")
        npoint = min(npoint, len(starts))
        sizes = [1] * npoint + list(vshape[len(vshape) - (len(t.shape) - npoint):])[:len(starts) - npoint]
        v = self.window(t, starts, sizes, node, squeeze_first=npoint)
        self.store_view(v, value, kwargs.get("mask"), node)

    def window(self, t: Val, starts, sizes, node, squeeze_first=0) -> Val:
        """A view starting at `starts` with block `sizes` on the leading dims (rest whole)."""
        free = [d for d, q in enumerate(t.squeeze) if not q]
        if len(starts) > len(free):
            self.error(node, f"{len(starts)} start indices for a view with {len(free)} dims")
        root = t.base
        offsets, sz, sq = list(t.offsets), list(t.sizes), list(t.squeeze)
        for j, (d, s0) in enumerate(zip(free, starts)):
            offsets[d] = self.binop("add", offsets[d], s0, node)
            if j < squeeze_first:
                sz[d], sq[d] = 1, True
            else:
                sz[d] = sizes[j] if j < len(sizes) else sz[d]
        shape = tuple(s for s, q in zip(sz, sq) if not q)
        self.check_tile_size(shape, node, "a block")
        return Val("view", None, root.dtype, shape, base=root, offsets=offsets, sizes=sz, squeeze=sq)

    def b_tile_alloc_shared(self, node, args, kwargs):
        a = _bind(node, self, "tile.alloc_shared", [("shape", _REQ), ("dtype", dt.f32), ("swizzle", None)], args, kwargs)
        shape = a["shape"] if isinstance(a["shape"], (list, tuple)) else [a["shape"]]
        shape = [self.static_int(s, node, "a static shared-buffer size") for s in shape]
        if not isinstance(a["dtype"], dt.DType):
            self.error(node, f"tile.alloc_shared: dtype must be a ts dtype, got {a['dtype']!r}")
        if any(s <= 0 for s in shape):
            self.error(node, f"tile.alloc_shared: sizes must be positive, got {shape}")
        v = tb.alloc_shared(shape, mlir_type(a["dtype"]), a["swizzle"], self.loc(node))
        return Val("shared", v, a["dtype"], tuple(shape))

    def b_tile_cp_async(self, node, args, kwargs):
        a = _bind(node, self, "tile.cp_async", [("dst", _REQ), ("src", _REQ), ("bypass_l1", False)], args, kwargs)
        dst, src = a["dst"], self._view_arg(a["src"], node, "tile.cp_async")
        if not isinstance(dst, Val) or dst.kind != "shared":
            self.error(node, "tile.cp_async: the destination must be a shared buffer (tile.alloc_shared)")
        if dst.dtype is not src.dtype:
            self.error(node, f"tile.cp_async: dtype mismatch, shared buffer is {dst.dtype.name}, source is {src.dtype.name}", )
        if tuple(dst.shape) != tuple(src.shape):
            self.error(node, f"tile.cp_async: the source view has shape {list(src.shape)}, the shared buffer {list(dst.shape)}")
        tb.cp_async(dst.v, self.materialize_view(src, node), bool(a["bypass_l1"]), self.loc(node))

    def b_tile_cp_commit_group(self, node, args, kwargs):
        tb.cp_commit_group(self.loc(node))

    def b_tile_cp_wait_group(self, node, args, kwargs):
        a = _bind(node, self, "tile.cp_wait_group", [("n", 0)], args, kwargs)
        tb.cp_wait_group(self.static_int(a["n"], node), self.loc(node))

    def b_tile_barrier(self, node, args, kwargs):
        tb.barrier(self.loc(node))

    def b_tile_fill(self, node, args, kwargs):
        a = _bind(node, self, "tile.fill", [("buf", _REQ), ("value", _REQ)], args, kwargs)
        if not isinstance(a["buf"], Val) or a["buf"].kind != "shared":
            self.error(node, "tile.fill expects a shared buffer")
        self.write_shared(a["buf"], a["value"], node)

    def b_tile_accumulate(self, node, args, kwargs):
        a = _bind(node, self, "tile.accumulate", [("buf", _REQ), ("value", _REQ), ("precision", None)], args, kwargs)
        buf = a["buf"]
        if not isinstance(buf, Val) or buf.kind != "shared":
            self.error(node, "tile.accumulate expects a shared buffer as its first argument")
        v = self.to_val(a["value"])
        if v.kind == "tile" and len(v.shape) > len(buf.shape):
            v = self.reshape_tile(v, v.shape[len(v.shape) - len(buf.shape):]) if all(d == 1 for d in v.shape[:len(v.shape) - len(buf.shape)]) else v
        self.write_shared(buf, self.binop("add", self.read_shared(buf), v, node), node)

    # -- compute ---------------------------------------------------------------------------
    def b_elementwise2(self, short, node, args, kwargs):
        a = _bind(node, self, f"tile.{short}", [("x", _REQ), ("y", _REQ), ("out", None)], args, kwargs)
        r = self.binop(_ELEMENTWISE2[short], a["x"], a["y"], node)
        if a["out"] is not None:
            out = a["out"]
            if not isinstance(out, Val) or out.kind != "shared":
                self.error(node, f"tile.{short}(..., out): out must be a shared buffer")
            self.write_shared(out, r, node)
            return out
        return r

    def b_tile_mma(self, node, args, kwargs):
        a = _bind(node, self, "tile.mma", [("a", _REQ), ("b", _REQ), ("acc", None),
                                           ("accumulator_type", dt.f32), ("precision_policy", None)], args, kwargs)
        x, y = self.to_val(a["a"]), self.to_val(a["b"])
        if x.kind != "tile" or y.kind != "tile" or len(x.shape) != 2 or len(y.shape) != 2:
            self.error(node, "tile.mma expects 2-d tiles or shared buffers (a: M×K, b: K×N)")
        (m, k), (k2, n) = x.shape, y.shape
        if k != k2:
            self.error(node, f"tile.mma: inner dims differ, a is {m}×{k} and b is {k2}×{n}")
        if a["accumulator_type"] is not dt.f32:
            self.error(node, "tile.mma accumulates in f32 (accumulator_type=ts.f32)")
        if x.dtype is not y.dtype:
            d = self.promote(x.dtype, y.dtype)
            x, y = self.cast(x, d), self.cast(y, d)
        if not x.dtype.is_float:
            self.error(node, f"tile.mma on {x.dtype.name} operands is not supported (use f32, f16 or bf16)")
        rt = ir.RankedTensorType.get([m, n], ir.F32Type.get())
        acc = None
        if a["acc"] is not None:
            acc = self.broadcast_to(self.cast(self.to_val(a["acc"], dt.f32), dt.f32), (m, n)).v
        return Val("tile", tb.mma(x.v, y.v, acc, rt, self.loc(node)), dt.f32, (m, n))

    def b_tile_where(self, node, args, kwargs):
        a = _bind(node, self, "tile.where", [("cond", _REQ), ("x", _REQ), ("y", _REQ)], args, kwargs)
        return self.select(a["cond"], a["x"], a["y"], node)

    def b_tile_cast(self, node, args, kwargs):
        a = _bind(node, self, "tile.cast", [("x", _REQ), ("dtype", _REQ)], args, kwargs)
        if not isinstance(a["dtype"], dt.DType):
            self.error(node, f"tile.cast: expected a ts dtype, got {a['dtype']!r}")
        return self.cast(self.to_val(a["x"], a["dtype"]), a["dtype"])

    def b_tile_sigmoid(self, node, args, kwargs):
        return self.sigmoid(_bind(node, self, "tile.sigmoid", [("x", _REQ)], args, kwargs)["x"], node)

    def _reduce_args(self, name, node, args, kwargs):
        a = _bind(node, self, name, [("x", _REQ), ("axis", None), ("keepdims", False)], args, kwargs)
        x = self.to_val(a["x"])
        if x.kind != "tile":
            self.error(node, f"{name} expects a tile")
        return x, a["axis"], bool(a["keepdims"])

    def reduce(self, kind, x: Val, axis, keepdims, node):
        axes = list(range(len(x.shape))) if axis is None else [axis]
        axes = [self.static_int(ax, node, "a static axis") for ax in axes]
        for ax in axes:
            if not -len(x.shape) <= ax < len(x.shape):
                self.error(node, f"axis {ax} is out of range for a tile of rank {len(x.shape)}")
        axes = sorted({ax % len(x.shape) for ax in axes}, reverse=True)
        if kind == "sum" and x.dtype.is_float and x.dtype.bits < 32:
            x = self.cast(x, dt.f32)
        if kind == "sum" and x.dtype is dt.bool_:
            x = self.cast(x, dt.i32)
        out_shape = list(x.shape)
        cur = x
        for ax in axes:
            shape = cur.shape[:ax] + cur.shape[ax + 1:]
            et = mlir_type(cur.dtype)
            rt = ir.RankedTensorType.get(list(shape), et) if shape else et
            cur = Val("tile" if shape else "scalar", tb.reduce(cur.v, kind, ax, rt, self.loc(node)), cur.dtype, tuple(shape))
            out_shape[ax] = 1
        if keepdims:
            if cur.kind == "scalar":
                cur = self.broadcast_to(cur, tuple(out_shape))
            else:
                cur = self.reshape_tile(cur, tuple(out_shape))
        return cur

    def b_tile_sum(self, node, args, kwargs):
        return self.reduce("sum", *self._reduce_args("tile.sum", node, args, kwargs), node)

    def b_tile_max(self, node, args, kwargs):
        return self.reduce("max", *self._reduce_args("tile.max", node, args, kwargs), node)

    def b_tile_min(self, node, args, kwargs):
        return self.reduce("min", *self._reduce_args("tile.min", node, args, kwargs), node)

    def softmax(self, x, axis, node):
        x = self.to_val(x)
        if x.kind != "tile":
            self.error(node, "softmax expects a tile")
        if not x.dtype.is_float or x.dtype.bits < 32:
            x = self.cast(x, dt.f32)
        m = self.reduce("max", x, axis, True, node)
        e = self.fast_exp(self.binop("sub", x, m, node), node)
        s = self.reduce("sum", e, axis, True, node)
        # one division per row, then a multiply per element (as fast softmax kernels do; ≤ 1 ulp more error)
        return self.binop("mul", e, self.reciprocal(s, node), node)

    def b_tile_softmax(self, node, args, kwargs):
        a = _bind(node, self, "tile.softmax", [("x", _REQ), ("axis", -1)], args, kwargs)
        return self.softmax(a["x"], a["axis"], node)

    def _shape_arg(self, shape, node):
        shape = shape if isinstance(shape, (list, tuple)) else [shape]
        out = tuple(self.static_int(s, node, "a static tile shape") for s in shape)
        if any(s <= 0 for s in out):
            self.error(node, f"tile shape sizes must be positive, got {list(out)}")
        self.check_tile_size(out, node, "a tile")
        return out

    def b_tile_zeros(self, node, args, kwargs):
        a = _bind(node, self, "tile.zeros", [("shape", _REQ), ("dtype", dt.f32)], args, kwargs)
        return self.splat_const(0, self._dtype_arg(a["dtype"], node, "tile.zeros"), self._shape_arg(a["shape"], node))

    def _dtype_arg(self, d, node, what):
        if not isinstance(d, dt.DType):
            self.error(node, f"{what}: dtype must be a ts dtype (ts.f32, ts.bf16, ...), got {d!r}")
        return d

    def b_tile_full(self, node, args, kwargs):
        a = _bind(node, self, "tile.full", [("shape", _REQ), ("value", _REQ), ("dtype", None)], args, kwargs)
        shape = self._shape_arg(a["shape"], node)
        v = a["value"]
        d = a["dtype"] or (v.dtype if isinstance(v, Val) else (dt.f32 if isinstance(v, float) else dt.i32))
        d = self._dtype_arg(d, node, "tile.full")
        if not isinstance(v, Val):
            return self.splat_const(v, d, shape)
        return self.broadcast_to(self.cast(v, d), shape)

    def b_tile_arange(self, node, args, kwargs):
        a = _bind(node, self, "tile.arange", [("start", _REQ), ("end", None)], args, kwargs)
        start, end = a["start"], a["end"]
        if end is None:
            start, end = 0, start
        s, e = self.static_int(start, node, "static arange bounds"), self.static_int(end, node, "static arange bounds")
        if e <= s:
            self.error(node, f"tile.arange({s}, {e}) is empty")
        self.check_tile_size((e - s,), node, "tile.arange")
        return Val("tile", tb.arange(s, e, self.loc(node)), dt.i32, (e - s,))

    # -- ts.ops ------------------------------------------------------------------------------
    def b_ops_sigmoid(self, node, args, kwargs):
        return self.sigmoid(_bind(node, self, "ts.ops.sigmoid", [("x", _REQ)], args, kwargs)["x"], node)

    def b_ops_sigmoid_safe(self, node, args, kwargs):
        return self.sigmoid(_bind(node, self, "ts.ops.sigmoid_safe", [("x", _REQ)], args, kwargs)["x"], node, safe=True)

    def b_ops_softmax(self, node, args, kwargs):
        a = _bind(node, self, "ts.ops.softmax", [("x", _REQ), ("axis", -1)], args, kwargs)
        return self.softmax(a["x"], a["axis"], node)

    b_ops_softmax_safe = b_ops_softmax

    def b_ops_distance_scaling(self, node, args, kwargs):
        a = _bind(node, self, "ts.ops.distance_scaling", [("d", _REQ), ("decay_rate", 0.1)], args, kwargs)
        d = a["d"]
        if not isinstance(d, Val):
            return math.exp(-float(a["decay_rate"]) * d)
        return self.unary_math("exp", self.binop("mul", -float(a["decay_rate"]), self.cast(d, dt.f32), node), node)

    def b_ops_silu(self, node, args, kwargs):
        x = _bind(node, self, "ts.ops.silu", [("x", _REQ)], args, kwargs)["x"]
        return self.binop("mul", x, self.sigmoid(x, node, safe=True), node)

    def b_ops_relu(self, node, args, kwargs):
        x = _bind(node, self, "ts.ops.relu", [("x", _REQ)], args, kwargs)["x"]
        return self.binop("max", x, 0.0, node)

    # -- views and shared buffers --------------------------------------------------------------
    def materialize_view(self, v: Val, node):
        offs = [self.as_index(o, node).v for o in v.offsets]
        return tb.view(v.base.v, offs, v.sizes, v.squeeze, self.loc(node))

    def load_view(self, v: Val, mask, other, node):
        et = mlir_type(v.dtype)
        rt = ir.RankedTensorType.get(list(v.shape), et) if v.shape else et
        m = o = None
        if mask is not None:
            m = self.cast(self.to_val(mask, dt.bool_), dt.bool_)
            if m.kind == "tile" or v.shape:
                m = self.broadcast_to(m, v.shape) if v.shape else m
            if m.kind == "tile" and not v.shape:
                self.error(node, "a scalar load takes a scalar mask")
            m = m.v
        if other is not None:
            ov = self.cast(self.to_val(other, v.dtype), v.dtype)
            if ov.kind == "tile":
                ov = self.broadcast_to(ov, v.shape)
            o = ov.v
        res = tb.load(self.materialize_view(v, node), rt, m, o, self.loc(node))
        return Val("tile" if v.shape else "scalar", res, v.dtype, tuple(v.shape))

    def _fit(self, value, dtype, shape, node, what):
        value = self.to_val(value, dtype)
        value = self.cast(value, dtype)
        if value.kind == "tile" and len(value.shape) > len(shape):
            extra = value.shape[:len(value.shape) - len(shape)]
            if all(d == 1 for d in extra):
                value = self.reshape_tile(value, value.shape[len(extra):])
        if value.kind == "tile":
            from .elementwise import broadcast_shapes
            if broadcast_shapes(value.shape, shape) != tuple(shape):
                self.error(node, f"{what}: a value of shape {list(value.shape)} does not fit a destination of shape {list(shape)}")
        if shape:
            value = self.broadcast_to(value, shape)
        elif value.kind == "tile":
            self.error(node, f"{what}: storing a tile into a single element")
        return value

    def store_view(self, v: Val, value, mask, node):
        val = self._fit(value, v.dtype, v.shape, node, "tile.store")
        m = None
        if mask is not None:
            mv = self.cast(self.to_val(mask, dt.bool_), dt.bool_)
            m = (self.broadcast_to(mv, v.shape) if v.shape else mv).v
        tb.store(self.materialize_view(v, node), val.v, m, self.loc(node))

    def read_shared(self, buf: Val) -> Val:
        rt = ir.RankedTensorType.get(list(buf.shape), mlir_type(buf.dtype))
        node = self.current_node()
        return Val("tile", tb.load(buf.v, rt, None, None, self.loc(node) if node else None), buf.dtype, buf.shape)

    def write_shared(self, buf: Val, value, node):
        val = self._fit(value, buf.dtype, buf.shape, node, "write to a shared buffer")
        tb.store(buf.v, val.v, None, self.loc(node))

    def transpose(self, x: Val, node):
        x = self.to_val(x)
        if x.kind != "tile" or len(x.shape) != 2:
            self.error(node, ".T needs a 2-d tile")
        from mlir.dialects import linalg
        with self.loc(node):
            init = _tensor.EmptyOp([x.shape[1], x.shape[0]], mlir_type(x.dtype)).result
            # linalg.transpose returns the op, whose `result` is a variadic list: consumers want the value
            r = linalg.transpose(x.v, outs=[init], permutation=[1, 0]).results[0]
        return Val("tile", r, x.dtype, (x.shape[1], x.shape[0]))
