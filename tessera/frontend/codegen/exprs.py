"""Expressions: names, constants, attributes, subscripts (views), operators."""
from __future__ import annotations

import ast

from ... import dtypes as dt
from ..annotations import constexpr
from ..dsl import Builtin, Namespace
from .base import Val, ShapeProxy, KernelContext

_BINOPS = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "truediv", ast.FloorDiv: "floordiv",
           ast.Mod: "mod", ast.Pow: "pow", ast.BitAnd: "and", ast.BitOr: "or", ast.BitXor: "xor",
           ast.LShift: "lshift", ast.RShift: "rshift"}
_CMPOPS = {ast.Lt: "lt", ast.LtE: "le", ast.Gt: "gt", ast.GtE: "ge", ast.Eq: "eq", ast.NotEq: "ne"}

# the launch options tile.context() reads, with the values a launch that does not set them compiles for
LAUNCH_OPTION_DEFAULTS = {"num_warps": 4, "num_stages": 3, "num_ctas": 1, "warp_specialize": False, "persistent": False}


class Exprs:
    def expr(self, node):
        self._node_stack.append(node)
        try:
            with self.loc(node):
                m = getattr(self, "expr_" + type(node).__name__, None)
                if m is None:
                    self.error(node, f"unsupported expression in a kernel: {type(node).__name__}")
                return m(node)
        finally:
            self._node_stack.pop()

    def expr_Constant(self, node):
        return node.value

    def expr_Name(self, node):
        v = self.lookup(node.id, node)
        if isinstance(v, constexpr):
            return v.value
        return v

    def expr_Tuple(self, node):
        return tuple(self.expr(e) for e in node.elts)

    def expr_List(self, node):
        return [self.expr(e) for e in node.elts]

    def expr_Attribute(self, node):
        base = self.expr(node.value)
        attr = node.attr
        if isinstance(base, Val):
            if base.kind == "list" and attr != "dtype":
                self.error(node, f"a list of tensors has no attribute '{attr}': use len({base.name}) or "
                                 f"{base.name}[i].{attr}")
            if attr == "shape":
                if base.kind == "tensor":
                    return ShapeProxy(self, base)
                return tuple(base.shape)
            if attr == "dtype":
                return base.dtype
            if attr == "ndim":
                return len(base.shape)
            if attr == "T" and base.kind in ("tile", "shared", "sview"):
                return self.transpose(base, node)
            self.error(node, f"a {base.kind} has no attribute '{attr}'")
        if isinstance(base, KernelContext):
            return self.context_attr(attr, node)
        if isinstance(base, ShapeProxy):
            self.error(node, f"x.shape has no attribute '{attr}'")
        try:
            return getattr(base, attr)
        except AttributeError:
            self.error(node, f"'{getattr(base, '__name__', type(base).__name__)}' has no attribute '{attr}'")

    def expr_BinOp(self, node):
        op = _BINOPS.get(type(node.op))
        if op is None:
            self.error(node, f"unsupported operator {type(node.op).__name__}")
        return self.binop(op, self.expr(node.left), self.expr(node.right), node)

    def expr_UnaryOp(self, node):
        x = self.expr(node.operand)
        if isinstance(node.op, ast.USub):
            return self.unary_math("neg", x, node)
        if isinstance(node.op, ast.UAdd):
            return x
        if isinstance(node.op, ast.Not):
            return (not x) if not isinstance(x, Val) else self.unary_math("not", x, node)
        if isinstance(node.op, ast.Invert):
            return ~x if not isinstance(x, Val) else self.binop("xor", x, -1 if x.dtype is not dt.bool_ else True, node)
        self.error(node, "unsupported unary operator")

    def expr_Compare(self, node):
        left = self.expr(node.left)
        result = None
        for op, right_node in zip(node.ops, node.comparators):
            right = self.expr(right_node)
            if isinstance(op, (ast.Is, ast.IsNot)):
                if isinstance(left, Val) or isinstance(right, Val):
                    self.error(node, "'is' comparisons only work on compile-time values")
                r = (left is right) if isinstance(op, ast.Is) else (left is not right)
            elif isinstance(op, (ast.In, ast.NotIn)):
                if isinstance(left, Val) or isinstance(right, Val):
                    self.error(node, "'in' only works on compile-time values")
                r = (left in right) if isinstance(op, ast.In) else (left not in right)
            else:
                name = _CMPOPS.get(type(op))
                r = self.binop(name, left, right, node)
            result = r if result is None else self.logical("and", result, r, node)
            left = right
        return result

    def logical(self, op, a, b, node):
        if not isinstance(a, Val) and not isinstance(b, Val):
            return (a and b) if op == "and" else (a or b)
        a = self.cast(self.to_val(a, dt.bool_), dt.bool_)
        b = self.cast(self.to_val(b, dt.bool_), dt.bool_)
        return self.binop(op, a, b, node)

    def expr_BoolOp(self, node):
        op = "and" if isinstance(node.op, ast.And) else "or"
        vals = node.values
        acc = self.expr(vals[0])
        for v in vals[1:]:
            if not isinstance(acc, Val):  # Python short-circuit on compile-time values
                if op == "and" and not acc:
                    return acc
                if op == "or" and acc:
                    return acc
                acc = self.expr(v)
                continue
            acc = self.logical(op, acc, self.expr(v), node)
        return acc

    def expr_IfExp(self, node):
        c = self.expr(node.test)
        if not isinstance(c, Val):
            return self.expr(node.body) if c else self.expr(node.orelse)
        return self.select(c, self.expr(node.body), self.expr(node.orelse), node)

    def expr_Call(self, node):
        fn = self.expr(node.func)
        if isinstance(fn, (Builtin, Namespace)):
            if isinstance(fn, Namespace):
                self.error(node, f"{fn._name} is not callable")
            return self.call_builtin(fn, node)
        args = [self.expr(a) for a in node.args]
        kwargs = {k.arg: self.expr(k.value) for k in node.keywords}
        return self.call_python(fn, args, kwargs, node)

    # -- subscripts: views on global tensors ----------------------------------------------------
    def expr_Subscript(self, node):
        base = self.expr(node.value)
        if isinstance(base, Val) and base.kind in ("tensor", "view"):
            elts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            return self.make_view(base, elts, node)
        if isinstance(base, Val) and base.kind == "list":
            if isinstance(node.slice, (ast.Slice, ast.Tuple)):
                self.error(node, f"a list of tensors is indexed by one integer: {base.name}[i]")
            return self.list_element(base, self.expr(node.slice), node)
        if isinstance(base, Val) and base.kind in ("tile", "shared"):
            return self.subscript_tile(base, node)
        if isinstance(base, Val):
            self.error(node, f"indexing a {base.kind} is not supported; index global tensors to make views")
        idx = self.expr(node.slice)
        if isinstance(idx, Val):
            self.error(node, "indexing a Python list with a runtime value is not supported")
        try:
            return base[idx]
        except Exception as e:  # noqa: BLE001
            self.error(node, f"{type(e).__name__}: {e}")

    def make_view(self, base: Val, elts, node) -> Val:
        """x[i, a:a+N, ...] → a view (base tensor, per-dim offset/size/squeeze)."""
        if base.kind == "view":
            root = base.base
            free = [d for d, q in enumerate(base.squeeze) if not q]
        else:
            root = base
            free = list(range(len(base.shape)))
        if len(elts) > len(free):
            self.error(node, f"too many indices: the {'view' if base.kind == 'view' else 'tensor'} has {len(free)} dims, got {len(elts)}")
        offsets = list(base.offsets) if base.kind == "view" else [0] * len(root.shape)
        sizes = list(base.sizes) if base.kind == "view" else [None] * len(root.shape)
        squeeze = list(base.squeeze) if base.kind == "view" else [False] * len(root.shape)
        for k, d in enumerate(free):
            e = elts[k] if k < len(elts) else None
            prev_off = offsets[d]
            if e is None or (isinstance(e, ast.Slice) and e.lower is None and e.upper is None):
                if e is not None and e.step is not None:
                    self.error(e, "strided slices are not supported")
                if sizes[d] is None:
                    sizes[d] = self.static_dim(root, d, node)
                continue
            if isinstance(e, ast.Slice):
                if e.step is not None:
                    self.error(e, "strided slices are not supported")
                lo = self.expr(e.lower) if e.lower is not None else 0
                if e.upper is None:
                    full = sizes[d] if sizes[d] is not None else self.static_dim(root, d, node)
                    size = full - self.static_int(lo, e, "a static slice start (open-ended slices need one)")
                else:
                    size = self.slice_size(e, lo)
                if size <= 0:
                    self.error(e, f"empty slice (size {size})")
                offsets[d] = self.binop("add", prev_off, lo, e)
                sizes[d] = size
                continue
            i = self.expr(e)
            if isinstance(i, Val) and (i.kind != "scalar" or not i.dtype.is_int):
                self.error(e, "tensor indices must be integer scalars or slices")
            if isinstance(i, int) and i < 0:
                i = self.binop("add", self.tensor_dim(root, d) if sizes[d] is None else sizes[d], i, e)
            offsets[d] = self.binop("add", prev_off, i, e)
            sizes[d] = 1
            squeeze[d] = True
        for d in range(len(root.shape)):
            if sizes[d] is None:
                sizes[d] = self.static_dim(root, d, node)
        shape = tuple(s for s, q in zip(sizes, squeeze) if not q)
        self.check_tile_size(shape, node, "a view")
        return Val("view", None, root.dtype, shape, base=root, offsets=offsets, sizes=sizes, squeeze=squeeze)

    def slice_size(self, e: ast.Slice, lo):
        hi = self.expr(e.upper)
        def static_like(v):
            return not isinstance(v, Val) or (v.kind == "scalar" and v.dims)
        if static_like(lo) and static_like(hi):  # ints, constexprs or named dims (specialised)
            return self.static_int(hi, e) - self.static_int(lo, e)
        # `a:a + N` (or `a:N + a`) with a runtime start and a static N
        up = e.upper
        if e.lower is not None and isinstance(up, ast.BinOp) and isinstance(up.op, (ast.Add, ast.Sub)):
            lo_dump = ast.dump(e.lower)
            if ast.dump(up.left) == lo_dump:
                n = self.static_int(self.expr(up.right), up.right, "a static slice size")
                return n if isinstance(up.op, ast.Add) else -n
            if isinstance(up.op, ast.Add) and ast.dump(up.right) == lo_dump:
                return self.static_int(self.expr(up.left), up.left, "a static slice size")
        self.error(e, "the size of a slice must be a compile-time constant: write x[i:i + BLOCK]")

    # -- dims ------------------------------------------------------------------------------------
    def tensor_dim(self, t: Val, i):
        if isinstance(i, Val):
            self.error(None, "x.shape[...] needs a compile-time index")
        n = len(t.shape)
        if not -n <= i < n:
            self.error(None, f"dimension {i} out of range for a rank-{n} tensor '{t.name}'")
        i %= n
        d = t.shape[i]
        if isinstance(d, int):
            return d
        if d in self.spec_dims:
            return self.dim_values[d]
        return self.runtime_dim(t, i, d)

    def static_dim(self, t: Val, i, node):
        d = t.shape[i]
        if isinstance(d, int):
            return d
        if d in self.spec_dims:
            return self.dim_values[d]
        raise self._need(d)

    def context_attr(self, attr, node):
        if attr in self.constexprs:
            return self.constexprs[attr]
        if attr in self.dim_owner:
            t, i = self.dim_owner[attr]
            return self.tensor_dim(t, i)
        if attr in LAUNCH_OPTION_DEFAULTS:   # the launch options this variant is compiled for (DESIGN §4)
            return self.spec.options.get(attr, LAUNCH_OPTION_DEFAULTS[attr])
        self.error(node, f"tile.context() has no '{attr}': known dims {sorted(self.dim_owner)}, "
                         f"constexprs {sorted(self.constexprs)}, launch options {sorted(LAUNCH_OPTION_DEFAULTS)}")
