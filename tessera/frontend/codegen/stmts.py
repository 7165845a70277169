"""Statements: assignment and control flow (scf.for / scf.if; break and continue via flags)."""
from __future__ import annotations

import ast

from mlir import ir
from mlir.dialects import scf

from ... import dtypes as dt
from ..dsl import Builtin
from .base import INDEX, MAX_UNROLL, Val

_CARRYABLE = ("scalar", "tile")


def assigned_names(stmts) -> list[str]:
    out = []
    for s in stmts:
        for n in ast.walk(s):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store) and n.id not in out:
                out.append(n.id)
    return out


def _exits(stmts, kinds=(ast.Break, ast.Continue)) -> bool:
    """Does this statement list break/continue the innermost enclosing loop?"""
    for s in stmts:
        stack = [s]
        while stack:
            n = stack.pop()
            if isinstance(n, kinds):
                return True
            if isinstance(n, (ast.For, ast.While, ast.FunctionDef, ast.Lambda)):
                continue
            stack.extend(ast.iter_child_nodes(n))
    return False


class Stmts:
    def stmt(self, node):
        self._node_stack.append(node)
        try:
            with self.loc(node):
                m = getattr(self, "stmt_" + type(node).__name__, None)
                if m is None:
                    self.error(node, f"unsupported statement in a kernel: {type(node).__name__}")
                return m(node)
        finally:
            self._node_stack.pop()

    def block(self, stmts):
        """Visit a statement list; after a statement that may break/continue, guard the rest."""
        for k, s in enumerate(stmts):
            if isinstance(s, (ast.Break, ast.Continue)):
                self.stmt(s)
                return
            self.stmt(s)
            if self.returned:
                return
            rest = stmts[k + 1:]
            if rest and self.loops and _exits([s]):
                flag = self.loops[-1]
                active = self.loop_active(flag)
                if isinstance(active, Val):
                    self.runtime_if(active, lambda: self.block(rest), None, rest, [])
                elif active:
                    continue
                return

    # -- simple statements ---------------------------------------------------------------
    def stmt_Expr(self, node):
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return  # docstring
        self.expr(node.value)

    def stmt_Pass(self, node):
        pass

    def stmt_Assign(self, node):
        value = self.expr(node.value)
        for target in node.targets:
            self.assign(target, value, node)

    def stmt_AnnAssign(self, node):
        if node.value is not None:
            self.assign(node.target, self.expr(node.value), node)

    def stmt_AugAssign(self, node):
        from .exprs import _BINOPS
        if not isinstance(node.target, ast.Name):
            self.error(node, "augmented assignment only to names (use tile.accumulate for shared buffers)")
        cur = self.lookup(node.target.id, node.target)
        if isinstance(cur, Val) and cur.kind == "shared":
            val = self.binop(_BINOPS[type(node.op)], self.read_shared(cur), self.expr(node.value), node)
            self.write_shared(cur, val, node)
            return
        self.assign(node.target, self.binop(_BINOPS[type(node.op)], cur, self.expr(node.value), node), node)

    def assign(self, target, value, node):
        if isinstance(target, ast.Name):
            self.scope[target.id] = value
        elif isinstance(target, (ast.Tuple, ast.List)):
            if not isinstance(value, (tuple, list)) or len(value) != len(target.elts):
                self.error(node, "cannot unpack this value into the targets")
            for t, v in zip(target.elts, value):
                self.assign(t, v, node)
        elif isinstance(target, ast.Subscript):
            base = self.expr(target.value)
            if isinstance(base, Val) and base.kind in ("tensor", "view"):
                elts = target.slice.elts if isinstance(target.slice, ast.Tuple) else [target.slice]
                self.store_view(self.make_view(base, elts, target), value, None, node)
            else:
                self.error(node, "only views of global tensors can be assigned to by index")
        else:
            self.error(node, f"unsupported assignment target {type(target).__name__}")

    def stmt_Return(self, node):
        if node.value is not None:
            self.error(node, "kernels cannot return values: store results into an output tensor")
        if self.loops or self.if_depth:
            self.error(node, "'return' inside a loop or a runtime 'if' is not supported in kernels")
        self.returned = True

    def stmt_Assert(self, node):
        c = self.expr(node.test)
        if isinstance(c, Val):
            return  # runtime asserts are not checked
        if not c:
            msg = self.expr(node.msg) if node.msg is not None else "assertion failed"
            self.error(node, f"static assertion failed: {msg}")

    def stmt_Break(self, node):
        if not self.loops:
            self.error(node, "'break' outside a loop")
        flag = self.loops[-1]
        if flag is None:
            self.error(node, "'break' in an unrolled loop is not supported")
        self.scope[flag + "brk"] = True

    def stmt_Continue(self, node):
        if not self.loops:
            self.error(node, "'continue' outside a loop")
        flag = self.loops[-1]
        if flag is None:
            self.error(node, "'continue' in an unrolled loop is not supported")
        self.scope[flag + "cont"] = True

    def loop_active(self, flag):
        brk = self.scope.get(flag + "brk", False)
        cont = self.scope.get(flag + "cont", False)
        return self.unary_math("not", self.logical("or", brk, cont, None), None) if isinstance(brk, Val) or isinstance(cont, Val) else not (brk or cont)

    # -- if --------------------------------------------------------------------------------
    def stmt_If(self, node):
        c = self.expr(node.test)
        if not isinstance(c, Val):
            self.block(node.body if c else node.orelse)
            return
        if c.kind != "scalar":
            self.error(node.test, "an 'if' condition must be a scalar (use tile.where for tiles)")
        body, orelse = node.body, node.orelse
        self.runtime_if(c, lambda: self.block(body), (lambda: self.block(orelse)) if orelse else None,
                        body, orelse)

    def runtime_if(self, cond: Val, then_fn, else_fn, then_stmts, else_stmts):
        cond = self.cast(cond, dt.bool_)
        names = [n for n in assigned_names(list(then_stmts) + list(else_stmts or []))]
        names += [k for k in self.scope if k.startswith("__loop") and k not in names]
        before = dict(self.scope)
        tmp = scf.IfOp(cond.v, [], has_else=True)
        self.if_depth += 1
        try:
            with ir.InsertionPoint(tmp.then_block):
                then_fn()
                then_scope = self.scope
            self.scope = dict(before)
            with ir.InsertionPoint(tmp.else_block):
                if else_fn:
                    else_fn()
                else_scope = self.scope
        finally:
            self.if_depth -= 1
        merged = []
        for n in names:
            a, b = then_scope.get(n, before.get(n)), else_scope.get(n, before.get(n))
            if a is None or b is None or (a is b and n in before):
                continue
            if not isinstance(a, Val) and not isinstance(b, Val) and a == b and type(a) is type(b):
                continue
            if isinstance(a, Val) and a.kind not in _CARRYABLE or isinstance(b, Val) and b.kind not in _CARRYABLE:
                if a is not b:
                    self.error(self.current_node(), f"'{n}' is assigned a {getattr(a, 'kind', 'value')} in a runtime 'if'; only scalars and tiles can be")
                continue
            if not isinstance(a, (Val, int, float, bool)) or not isinstance(b, (Val, int, float, bool)):
                self.error(self.current_node(), f"'{n}' is assigned a non-numeric Python value in a runtime 'if'")
            merged.append(n)
        # unify each merged name's type across the branches (casts at the end of each branch)
        tvals, evals = [], []
        for n in merged:
            a, b = then_scope.get(n, before.get(n)), else_scope.get(n, before.get(n))
            da = a.dtype if isinstance(a, Val) else self.py_dtype(a)
            db = b.dtype if isinstance(b, Val) else self.py_dtype(b)
            d = self.promote(da, db)
            shape = None
            sa = a.shape if isinstance(a, Val) and a.kind == "tile" else ()
            sb = b.shape if isinstance(b, Val) and b.kind == "tile" else ()
            from .elementwise import broadcast_shapes
            shape = broadcast_shapes(sa, sb)
            if shape is None:
                self.error(self.current_node(), f"'{n}' has shapes {list(sa)} and {list(sb)} in the two branches")
            with ir.InsertionPoint(tmp.then_block):
                tvals.append(self.broadcast_to(self.cast(self.to_val(a, d), d), shape) if shape else self.cast(self.to_val(a, d), d))
            with ir.InsertionPoint(tmp.else_block):
                evals.append(self.broadcast_to(self.cast(self.to_val(b, d), d), shape) if shape else self.cast(self.to_val(b, d), d))
        types = [v.v.type for v in tvals]
        new = scf.IfOp(cond.v, types, has_else=True)
        for old_blk, new_blk, vals in ((tmp.then_block, new.then_block, tvals), (tmp.else_block, new.else_block, evals)):
            with ir.InsertionPoint(new_blk):
                y = scf.YieldOp([v.v for v in vals])
            for op in list(old_blk.operations):
                op.move_before(y)
        tmp.operation.erase()
        self.scope = dict(before)
        for n, tv, r in zip(merged, tvals, new.results):
            self.scope[n] = Val(tv.kind, r, tv.dtype, tv.shape)

    # -- for ---------------------------------------------------------------------------------
    def stmt_For(self, node):
        if node.orelse:
            self.error(node, "for ... else is not supported in kernels")
        it = node.iter
        kind, bounds = self.loop_kind(it)
        if kind == "python":
            self.unrolled(node, bounds)
        elif kind == "static":
            self.unrolled(node, range(*bounds))
        else:
            self.runtime_for(node, bounds)

    def loop_kind(self, it):
        if isinstance(it, ast.Call):
            fn = self.expr(it.func)
            if fn is range or (isinstance(fn, Builtin) and fn.name in ("tile.range", "tile.static_range")):
                args = [self.expr(a) for a in it.args]
                if not 1 <= len(args) <= 3:
                    self.error(it, "range() takes 1 to 3 arguments")
                if len(args) == 1:
                    args = [0, args[0]]
                if isinstance(fn, Builtin) and fn.name == "tile.static_range":
                    return "static", [self.static_int(a, it, "tile.static_range bounds must be static") for a in args]
                return "runtime", args
        seq = self.expr(it)
        if isinstance(seq, Val) and seq.kind == "list":   # `for x in xs`: unrolled over the list's tensors
            return "python", self.list_elements(seq, it)
        if isinstance(seq, Val):
            self.error(it, "cannot iterate over a runtime value; use range(...) or tile.range(...)")
        try:
            return "python", list(seq)
        except TypeError:
            self.error(it, f"cannot iterate over {type(seq).__name__}")

    def unrolled(self, node, values):
        if len(values) > MAX_UNROLL:
            self.error(node.iter, f"an unrolled loop of {len(values)} iterations (at most {MAX_UNROLL}): use "
                                  "tile.range(...) for a runtime loop")
        if _exits(node.body):
            self.error(node, "'break'/'continue' in an unrolled loop are not supported")
        self.loops.append(None)
        try:
            for v in values:
                self.assign(node.target, v, node)
                self.block(node.body)
        finally:
            self.loops.pop()

    def runtime_for(self, node, args):
        if not isinstance(node.target, ast.Name):
            self.error(node.target, "a runtime loop variable must be a single name")
        lb = self.as_index(args[0], node.iter)
        ub = self.as_index(args[1], node.iter)
        step_py = args[2] if len(args) > 2 else 1
        if not isinstance(step_py, Val) and step_py <= 0:
            self.error(node.iter, "runtime loops need a positive step")
        step = self.as_index(step_py, node.iter)
        flag = None
        if _exits(node.body):
            self.loop_id += 1
            flag = f"__loop{self.loop_id}_"
            self.scope[flag + "brk"] = self.const(False, dt.bool_)
        body_names = assigned_names(node.body)
        escaping = [n for n in body_names if n != node.target.id and n not in self.scope and self._read_after(n, node)]
        if escaping:   # first assigned in the loop, read after it: carried, from zeros of the type the body gives
            for n, v in self._body_types(node, lb, ub, step, flag, escaping).items():
                self.scope[n] = self.splat_const(0, v.dtype, v.shape) if v.kind == "tile" else self.const(0, v.dtype)
        carried = []
        for n in body_names + ([flag + "brk"] if flag else []):
            if n == node.target.id or n in carried:
                continue
            cur = self.scope.get(n)
            if isinstance(cur, Val) and cur.kind in _CARRYABLE:
                carried.append(n)
            elif isinstance(cur, (bool, int, float)) and not isinstance(cur, Val):
                self.scope[n] = self.to_val(cur)
                carried.append(n)
        init = [self.scope[n] for n in carried]
        loop = scf.ForOp(lb.v, ub.v, step.v, [v.v for v in init])
        before = dict(self.scope)
        self.loops.append(flag)
        try:
            with ir.InsertionPoint(loop.body):
                for n, v, ba in zip(carried, init, loop.inner_iter_args):
                    self.scope[n] = Val(v.kind, ba, v.dtype, v.shape)
                self.scope[node.target.id] = Val("scalar", loop.induction_variable, INDEX)
                self._loop_body(node, flag)
                outs = []
                for n, v in zip(carried, init):
                    cur = self.scope[n]
                    if not isinstance(cur, Val) or cur.kind != v.kind or cur.shape != v.shape:
                        if isinstance(cur, Val) and cur.kind == "tile" and v.kind == "scalar":
                            self.error(node, f"'{n}' changes from a scalar to a tile inside the loop: initialise it as a tile (tile.zeros/tile.full) before the loop")
                        if not isinstance(cur, Val) or cur.kind not in _CARRYABLE or (cur.kind == "tile" and cur.shape != v.shape):
                            self.error(node, f"'{n}' changes kind or shape inside the loop ({v!r} before, {cur!r} after)")
                    cur = self.broadcast_like(self.cast(self.to_val(cur, v.dtype), v.dtype), v) if v.kind == "tile" else self.cast(self.to_val(cur, v.dtype), v.dtype)
                    outs.append(cur.v)
                scf.YieldOp(outs)
        finally:
            self.loops.pop()
        self.scope = before
        for n, v, r in zip(carried, init, loop.results):
            self.scope[n] = Val(v.kind, r, v.dtype, v.shape)
        if flag:
            self.scope.pop(flag + "brk", None)

    def _loop_body(self, node, flag):
        if flag:
            self.scope[flag + "cont"] = False
            body = node.body
            active = self.unary_math("not", self.scope[flag + "brk"], node)
            self.runtime_if(active, lambda: self.block(body), None, body, [])
        else:
            self.block(node.body)

    def _read_after(self, name, loop) -> bool:
        end = getattr(loop, "end_lineno", loop.lineno)
        return any(isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load) and n.lineno > end
                   for n in ast.walk(self.info.tree))

    def _body_types(self, node, lb, ub, step, flag, names) -> dict:
        """What the loop body assigns to `names` (scalars and tiles): the body generated once into a scratch
        loop that is then erased (Python semantics: after the loop a name holds the last iteration's value)."""
        scope, loop_id = dict(self.scope), self.loop_id
        scratch = scf.ForOp(lb.v, ub.v, step.v, [])
        found = {}
        self.loops.append(flag)
        try:
            with ir.InsertionPoint(scratch.body):
                self.scope[node.target.id] = Val("scalar", scratch.induction_variable, INDEX)
                self._loop_body(node, flag)
                for n in names:
                    v = self.scope.get(n)
                    if isinstance(v, Val) and v.kind in _CARRYABLE:
                        found[n] = Val(v.kind, None, v.dtype, v.shape)
                scf.YieldOp([])
        finally:
            self.loops.pop()
            self.scope, self.loop_id = scope, loop_id
            scratch.operation.erase()
        return found

    def stmt_While(self, node):
        self.error(node, "while loops are not supported in kernels: use for ... in range(...) with break")
