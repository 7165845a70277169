"""Running an optimised ts graph (the grouping of tessera-lower-graph-to-tile): consecutive
elementwise ops of one shape form a fusion group, every other op is its own group; each group is a
tile kernel generated from a DSL template (tessera.graph.kernels, tessera.gdn.generated) and compiled
by the normal kernel path for the arrays' backend, launched in program order on row-major
[rows, last-dim] views. The plan is built once per traced signature."""
from __future__ import annotations

import itertools

import numpy as np
from mlir import ir

from . import collective_steps, kernels as gk
from ..frontend.codegen.base import dtype_of
from ..ir.locations import error_at
from ..passes.graph_match import op_of, strip_casts

_EW_BIN = {"arith.addf": "{} + {}", "arith.subf": "{} - {}", "arith.mulf": "{} * {}", "arith.divf": "{} / {}",
           "arith.addi": "{} + {}", "arith.subi": "{} - {}", "arith.muli": "{} * {}",
           "arith.maximumf": "tile.maximum({}, {})", "arith.minimumf": "tile.minimum({}, {})"}
_EW_UN = {"math.exp": "tile.exp({})", "math.log": "tile.log({})", "math.sqrt": "tile.sqrt({})",
          "math.tanh": "tile.tanh({})", "math.absf": "tile.abs({})", "arith.negf": "-{}",
          "ts.sigmoid": "ts.ops.sigmoid_safe({})"}
# comparisons (arith's predicate numbers) and selects: the masks of gradients (maximum, reductions to a max)
_CMPF = {1: "==", 2: ">", 3: ">=", 4: "<", 5: "<=", 6: "!="}
_CMPI = {0: "==", 1: "!=", 2: "<", 3: "<=", 4: ">", 5: ">="}
_EW_OTHER = ("ts.cast", "ts.broadcast", "arith.cmpf", "arith.cmpi", "arith.select")


def _is_tensor(t):
    return isinstance(t, ir.RankedTensorType)


def _shape(t):
    return tuple(ir.RankedTensorType(t).shape)


def _dtype(t):
    return dtype_of(ir.RankedTensorType(t).element_type if _is_tensor(t) else t)


def float_literal(x) -> str:
    """A float as kernel source: NaN and infinities as float("...") (repr gives the bare names nan / inf)."""
    x = float(x)
    if x != x:
        return 'float("nan")'
    if x in (float("inf"), float("-inf")):
        return 'float("inf")' if x > 0 else '-float("inf")'
    return repr(x)


def _pow2(n):
    p = 1
    while p < n:
        p *= 2
    return p


class Step:
    """One kernel launch of a plan. `grid`: a tuple, or a callable of the launch's constexprs;
    `by_target`: target name -> constexprs that replace the defaults when the plan runs there."""

    def __init__(self, kernel, grid, args, constexprs, outs, label, by_target=None):
        self.kernel, self.grid, self.args, self.constexprs = kernel, grid, args, constexprs
        self.outs, self.label = outs, label   # outs: [(slot, shape, numpy dtype)]
        self.by_target = by_target or {}

    def launch_config(self, target):
        ce = {**self.constexprs, **self.by_target.get(target, {})}
        return (self.grid(ce) if callable(self.grid) else self.grid), ce


class _TmpValue:
    """A plan-internal tensor (no IR value): just a slot and a shape."""

    def __init__(self, slot, shape, like_type):
        self.slot_, self.shape = slot, shape
        self.type = ir.RankedTensorType.get(list(shape), ir.RankedTensorType(like_type).element_type)


class Plan:
    def __init__(self, n_args):
        self.n_args = n_args
        self.steps, self.constants, self.outputs = [], {}, []

    @property
    def kernel_count(self):
        return len(self.steps)

    def liveness(self):
        """(frees, peak) of tessera.graph.execute.liveness, computed once."""
        if getattr(self, "_liveness", None) is None:
            from .execute import liveness
            self._liveness = liveness(self.steps, self.outputs)
        return self._liveness


def _flat_index(extract_op):
    """Row-major flat index of a tensor.extract with constant indices."""
    idx = []
    for i in list(extract_op.operands)[1:]:
        io = op_of(i)
        if io is None or io.name != "arith.constant":
            raise error_at(extract_op.location, "tensor indices must be compile-time constants")
        idx.append(ir.IntegerAttr(io.attributes["value"]).value)
    return int(np.ravel_multi_index(idx, _shape(extract_op.operands[0].type)))


def _rows(shape):
    return int(np.prod(shape[:-1])) if len(shape) > 1 else 1


class _Builder:
    def __init__(self, block):
        self.plan = Plan(len(block.arguments))
        self.slots = {}
        self.types = {}
        self.tmp_ids = itertools.count()   # one numbering for every temporary, whoever makes it
        for i, a in enumerate(block.arguments):
            self.slots[a] = ("arg", i)
            if _is_tensor(a.type):
                self.types[("arg", i)] = (_shape(a.type), _dtype(a.type).to_numpy())
        self.group = []

    def slot(self, v):
        if isinstance(v, _TmpValue):
            return v.slot_
        s = self.slots.get(v)
        if s is None:
            o = op_of(v)
            if o is not None and o.name == "arith.constant" and _is_tensor(v.type):
                attr = ir.DenseElementsAttr(o.attributes["value"])
                if attr.is_splat:   # (np.array cannot read bf16 / f8 splats)
                    splat = attr.get_splat_value()
                    value = splat.value if hasattr(splat, "value") else float(splat)
                    arr = np.full(_shape(v.type), value, np.float64 if isinstance(value, float) else np.int64)
                else:
                    arr = np.array(attr)
                s = self.constant_slot(arr.astype(_dtype(v.type).to_numpy()))
                self.slots[v] = s
                return s
            raise error_at(o.location if o is not None else None, "this value cannot be a kernel operand yet")
        return s

    def new_tmp(self, v):
        s = ("tmp", next(self.tmp_ids))
        self.slots[v] = s
        self.types[s] = (_shape(v.type), _dtype(v.type).to_numpy())
        return s

    def constant_slot(self, arr):
        s = ("const", len(self.plan.constants))
        self.plan.constants[s] = np.asarray(arr)
        self.types[s] = (self.plan.constants[s].shape, self.plan.constants[s].dtype)
        return s

    def example(self, spec):
        """A zero array shaped like the view a kernel gets for this argument (for ts.compile)."""
        kind, slot = spec
        shape, dtype = self.types[slot] if slot[0] != "reshape" else (slot[2], self.types[slot[1]][1])
        if isinstance(kind, tuple) and kind[0] == "perm":  # a permuted strided view
            return np.zeros(shape, dtype).transpose(kind[1])
        if isinstance(kind, tuple) and kind[0] == "slice":  # a slice of the output along one axis
            return np.zeros(shape, dtype)[(slice(None),) * kind[1] + (slice(kind[2], kind[3]),)]
        if isinstance(kind, tuple) and kind[0] == "bcast":  # a zero-stride broadcast view
            return np.broadcast_to(np.zeros(kind[1], dtype), kind[2])
        if isinstance(kind, tuple) and kind[0] == "index":  # a basic-indexing view of the input
            return np.zeros(shape, dtype)[kind[1]]
        n = int(np.prod(shape)) if shape else 1
        view = {"flat": (n,), "col": (n, 1), "rows": (n // shape[-1], shape[-1]) if shape else (1, 1),
                "batch3": (n // (shape[-1] * shape[-2]), shape[-2], shape[-1]) if len(shape) >= 2 else shape}.get(kind, shape)
        return np.zeros(view, dtype)

    # -- scalars ---------------------------------------------------------------------------
    def scalar_expr(self, v, params, consts):
        o = op_of(v)
        if o is None:
            raise error_at(None, "scalar function arguments are compile-time constants")
        if o.name == "arith.constant":
            a = o.attributes["value"]
            return float_literal(a.value) if isinstance(a, ir.FloatAttr) else repr(int(a.value))
        if o.name == "ts.cast":
            return f"tile.cast({self.scalar_expr(o.operands[0], params, consts)}, ts.{_dtype(v.type).name})"
        if o.name == "tensor.extract":
            name = f"sc{len(params)}"
            params.append((name, ("flat", self.slot(o.operands[0]))))
            consts[f"I_{name}"] = _flat_index(o)
            return f"v_{name}"
        raise error_at(o.location, f"'{o.name}' cannot produce a scalar operand yet")

    # -- elementwise groups ------------------------------------------------------------------
    def flush(self):
        if not self.group:
            return
        ops, self.group = self.group, []
        shape = _shape(ops[-1].results[0].type)
        inside = {op.results[0] for op in ops}
        names, inputs, scalars, consts, lines, args = {}, [], [], {}, [], []
        scalar_params = []   # shared by every scalar of the group, so their names stay distinct

        def expr(v):
            if v in names:
                return names[v]
            if not _is_tensor(v.type):
                first = len(scalar_params)
                e = self.scalar_expr(v, scalar_params, consts)
                for n, a in scalar_params[first:]:
                    scalars.append(n)
                    args.append(a)
                names[v] = e
                return e
            o = op_of(v)
            if o is not None and o.name == "arith.constant":
                d = ir.DenseElementsAttr(o.attributes["value"])
                if d.is_splat:
                    s = d.get_splat_value()
                    names[v] = float_literal(s.value) if isinstance(s, ir.FloatAttr) else repr(int(s.value))
                    return names[v]
            vs = _shape(v.type)
            n = f"in{len(inputs) + len(scalars)}"   # unique across tensor and scalar inputs
            if vs == shape:
                inputs.append((n, "full"))
                args.append(("rows", self.slot(v)))
            elif vs and vs[-1] == shape[-1] and int(np.prod(vs)) == shape[-1]:
                inputs.append((n, "row"))
                args.append(("rows", self.slot(v)))
            elif len(vs) == len(shape) and vs[:-1] == shape[:-1] and vs[-1] == 1:
                inputs.append((n, "col"))
                args.append(("col", self.slot(v)))
            elif int(np.prod(vs)) == 1:
                scalars.append(n)
                args.append(("flat", self.slot(v)))
                consts[f"I_{n}"] = 0
                names[v] = f"v_{n}"
                return names[v]
            elif 2 <= len(shape) <= 4 and len(vs) <= len(shape):
                inputs.append((n, "full"))  # general broadcast: materialised by a compiled strided copy
                args.append(("rows", self.materialise_broadcast(v, shape)))
            else:
                raise error_at(o.location if o else None, f"broadcasting {list(vs)} to {list(shape)} cannot run yet")
            names[v] = f"v_{n}"
            return names[v]

        for k, op in enumerate(ops):
            r = op.results[0]
            operands = list(op.operands)
            if op.name == "arith.constant":
                continue
            t = f"t{k}"
            if op.name in _EW_BIN:
                lines.append(f"{t} = " + _EW_BIN[op.name].format(expr(operands[0]), expr(operands[1])))
            elif op.name in _EW_UN:
                lines.append(f"{t} = " + _EW_UN[op.name].format(expr(operands[0])))
            elif op.name == "ts.cast":
                lines.append(f"{t} = tile.cast({expr(operands[0])}, ts.{_dtype(r.type).name})")
            elif op.name == "ts.broadcast":
                lines.append(f"{t} = {expr(operands[0])}")
            elif op.name in ("arith.cmpf", "arith.cmpi"):
                table = _CMPF if op.name == "arith.cmpf" else _CMPI
                pred = ir.IntegerAttr(op.attributes["predicate"]).value
                if pred not in table:
                    raise error_at(op.location, f"'{op.name}' with predicate {pred} cannot run yet")
                lines.append(f"{t} = ({expr(operands[0])}) {table[pred]} ({expr(operands[1])})")
            elif op.name == "arith.select":
                lines.append(f"{t} = tile.where({expr(operands[0])}, {expr(operands[1])}, {expr(operands[2])})")
            else:
                raise error_at(op.location, f"'{op.name}' cannot run in an elementwise group yet")
            names[r] = t
        outputs, outs = [], []
        for k, op in enumerate(ops):
            r = op.results[0]
            if r not in names or not names[r].startswith("t"):
                continue
            used_outside = any(u.owner.operation.name == "func.return" or
                               u.owner.operation.results and u.owner.operation.results[0] not in inside
                               for u in r.uses)
            if used_outside:
                s = self.new_tmp(r)
                outputs.append((f"out{len(outputs)}", names[r]))
                outs.append((s, _shape(r.type), _dtype(r.type).to_numpy()))
                args.append(("rows", s))
        kern = gk.elementwise(inputs, scalars, lines, outputs)
        bc = min(128, _pow2(shape[-1] if shape else 1))
        br = max(1, min(8, 1024 // bc))
        consts.update(BLOCK_R=br, BLOCK_C=bc)
        grid = (-(-_rows(shape) // br), -(-(shape[-1] if shape else 1) // bc))
        ordered = self._order(inputs, scalars, outputs, args)
        self.plan.steps.append(Step(kern, grid, ordered, consts, outs, "elementwise"))

    @staticmethod
    def _order(inputs, scalars, outputs, args):
        # args were appended as encountered: tensors and scalars interleaved, outputs last
        tensor_args = [a for a in args[:len(args) - len(outputs)] if a[0] in ("rows", "col")]
        scalar_args = [a for a in args[:len(args) - len(outputs)] if a[0] == "flat"]
        assert len(tensor_args) == len(inputs) and len(scalar_args) == len(scalars)
        return tensor_args + scalar_args + args[len(args) - len(outputs):]

    # -- other ops -----------------------------------------------------------------------------
    def op(self, op):
        name = op.name
        res = op.results[0] if op.results else None
        if name in _EW_BIN or name in _EW_UN or name in _EW_OTHER or \
                (name == "arith.constant" and _is_tensor(res.type)):
            if res is not None and _is_tensor(res.type):
                if self.group and _shape(self.group[-1].results[0].type) != _shape(res.type):
                    self.flush()
                self.group.append(op)
                return
        if res is not None and not _is_tensor(res.type) and name in ("arith.constant", "tensor.extract", "ts.cast"):
            return  # scalars are folded into the kernels that read them
        self.flush()
        if name == "func.return":
            self.plan.outputs = [self.slot(v) for v in op.operands]
        elif name in collective_steps.COLLECTIVES:
            self.plan.steps.append(collective_steps.step(self, op))
        elif name == "ts.fused_delta_gating":
            self.fused(op)
        elif name == "ts.fused_delta_gating_grad":
            self.fused_grad(op)
        elif name in ("ts.gemm", "ts.gemm_epilogue"):
            self.gemm(op)
        elif name in ("ts.reduce", "ts.softmax", "ts.l2_norm"):
            self.row(op)
        elif name in ("ts.gating_function", "ts.delta_connection"):
            self.gating(op)
        elif name == "ts.transpose":
            perm = list(ir.DenseI64ArrayAttr(op.attributes["perm"]))
            xs = _shape(op.operands[0].type)
            if not 2 <= len(xs) <= 4:
                raise error_at(op.location, "transposes of rank other than 2-4 cannot run yet")
            o = self.out(res)
            rows = _rows(_shape(res.type))
            self.plan.steps.append(Step(gk.strided_copy(len(xs)), (rows,),
                                        [(("perm", tuple(perm)), self.slot(op.operands[0])), ("full", o[0])],
                                        {"BLOCK_C": min(128, _pow2(_shape(res.type)[-1]))}, [o], name))
        elif name == "ts.dropout":
            o = self.out(res)
            rs = _shape(res.type)
            self.plan.steps.append(Step(gk.dropout(), (_rows(rs),), [("rows", self.slot(op.operands[0])), ("rows", o[0])],
                                        {"P": float(ir.FloatAttr(op.attributes["p"]).value),
                                         "SEED": int(ir.IntegerAttr(op.attributes["seed"]).value),
                                         "BLOCK_C": min(128, _pow2(rs[-1]))}, [o], name))
        elif name == "ts.embedding":
            o = self.out(res)
            n = int(np.prod(_shape(op.operands[0].type)))
            self.plan.steps.append(Step(gk.embedding(), (n,), [("flat", self.slot(op.operands[0])),
                                                               ("full", self.slot(op.operands[1])), ("rows", o[0])],
                                        {"BLOCK_D": min(128, _pow2(_shape(res.type)[-1]))}, [o], name))
        elif name == "ts.concatenate":
            axis = ir.IntegerAttr(op.attributes["axis"]).value
            rs = _shape(res.type)
            if not 2 <= len(rs) <= 4:
                raise error_at(op.location, "concatenations of rank other than 2-4 cannot run yet")
            o = self.out(res)
            off = 0
            for x in op.operands:
                n = _shape(x.type)[axis]
                self.plan.steps.append(Step(gk.strided_copy(len(rs)), (_rows(_shape(x.type)),),
                                            [("full", self.slot(x)), (("slice", axis, off, off + n), o[0])],
                                            {"BLOCK_C": min(128, _pow2(rs[-1]))}, [o] if off == 0 else [], name))
                off += n
        elif name == "ts.slice":
            offs = list(ir.DenseI64ArrayAttr(op.attributes["offsets"]))
            sizes = list(ir.DenseI64ArrayAttr(op.attributes["sizes"]))
            sq = list(ir.DenseI64ArrayAttr(op.attributes["squeeze"]))
            key = tuple((o if q else slice(o, o + n)) for o, n, q in zip(offs, sizes, sq))
            rs = _shape(res.type)
            if not 1 <= len(rs) <= 4:
                raise error_at(op.location, "slices with a result of rank other than 1-4 cannot run yet")
            o = self.out(res)
            out_view = "full"
            if len(rs) == 1:   # a vector out of a matrix (w[:, 0]): copied as one row
                key, rs, out_view = (None,) + key, (1,) + rs, "rows"
            self.plan.steps.append(Step(gk.strided_copy(len(rs)), (_rows(rs),),
                                        [(("index", key), self.slot(op.operands[0])), (out_view, o[0])],
                                        {"BLOCK_C": min(128, _pow2(rs[-1]))}, [o], name))
        elif name == "ts.reshape":
            src = self.slot(op.operands[0])
            if src[0] == "reshape":   # a reshape of a reshape is one of the base array
                src = src[1]
            self.slots[res] = ("reshape", src, _shape(res.type))
        else:
            raise error_at(op.location, f"'{name}' cannot run yet (tessera-lower-graph-to-tile has no kernel for it)")

    def materialise_broadcast(self, v, shape):
        vs = _shape(v.type)
        aligned = (1,) * (len(shape) - len(vs)) + vs
        s = ("tmp", next(self.tmp_ids))
        self.types[s] = (tuple(shape), _dtype(v.type).to_numpy())
        self.plan.steps.append(Step(gk.strided_copy(len(shape)), (_rows(shape),),
                                    [(("bcast", aligned, tuple(shape)), self.slot(v)), ("full", s)],
                                    {"BLOCK_C": min(128, _pow2(shape[-1]))}, [(s, tuple(shape), self.types[s][1])],
                                    "broadcast"))
        return s

    def move_last(self, x, axis, op):
        """A temporary holding x with `axis` moved last (a compiled strided copy)."""
        xs = _shape(x.type)
        if not 2 <= len(xs) <= 4:
            raise error_at(op.location, "reductions of rank other than 2-4 over a leading axis cannot run yet")
        perm = [i for i in range(len(xs)) if i != axis] + [axis]
        shape = tuple(xs[i] for i in perm)
        s = ("tmp", next(self.tmp_ids))
        self.types[s] = (shape, _dtype(x.type).to_numpy())
        self.plan.steps.append(Step(gk.strided_copy(len(xs)), (_rows(shape),),
                                    [(("perm", tuple(perm)), self.slot(x)), ("full", s)],
                                    {"BLOCK_C": min(128, _pow2(shape[-1]))}, [(s, shape, self.types[s][1])], "transpose"))
        return _TmpValue(s, shape, x.type)

    def out(self, res):
        return (self.new_tmp(res), _shape(res.type), _dtype(res.type).to_numpy())

    def gemm(self, op):
        a, b = op.operands[0], op.operands[1]
        if len(_shape(b.type)) != 2:
            self.batched_gemm(op)
            return
        res = op.results[0]
        epi = op.name == "ts.gemm_epilogue"
        args = [("rows", self.slot(a)), ("full", self.slot(b))]
        o = self.out(res)
        args.append(("rows", o[0]))
        scale = False
        if epi:
            seg = list(ir.DenseI32ArrayAttr(op.attributes["operandSegmentSizes"]))
            ops = list(op.operands)
            scale = bool(seg[2])
            mult = ops[2 + seg[2]] if seg[3] else None
            if mult is None:
                raise error_at(op.location, "a gemm epilogue without a multiplier cannot run yet")
            args.append(("rows", self.slot(mult)))
            if scale:
                sc = self.scalar_const(ops[2], op)
                args.append(("flat", sc))
        rs, n = _rows(_shape(a.type)), _shape(b.type)[1]
        if _dtype(res.type).name == "f64" and not epi:
            self.plan.steps.append(Step(gk.gemm_f64(False), (-(-rs // 16), -(-n // 16)), args, {}, [o], op.name))
            return
        k = gk.gemm(epi, scale)
        self.plan.steps.append(Step(k, (-(-rs // 32), -(-n // 32)), args, {}, [o], op.name))

    def batched_gemm(self, op):
        a, b = op.operands[0], op.operands[1]
        sa, sb = _shape(a.type), _shape(b.type)
        if op.name != "ts.gemm" or sa[:-2] != sb[:-2]:
            raise error_at(op.location, "batched GEMMs need equal batch dims (and no epilogue) to run yet")
        o = self.out(op.results[0])
        batch = int(np.prod(sa[:-2]))
        f64 = _dtype(op.results[0].type).name == "f64"
        t = 16 if f64 else 32
        grid = (-(-sa[-2] // t), -(-sb[-1] // t), batch)
        self.plan.steps.append(Step(gk.gemm_f64(True) if f64 else gk.batched_gemm(), grid, [("batch3", self.slot(a)), ("batch3", self.slot(b)),
                                                              ("batch3", o[0])], {}, [o], "ts.gemm"))

    def scalar_const(self, v, op):
        val = strip_casts(v)
        o = op_of(val)
        if o is None or o.name != "arith.constant":
            raise error_at(op.location, "the GEMM epilogue scale must be a constant")
        return self.constant_slot(np.array([float(o.attributes["value"].value)], np.float32))

    def row(self, op):
        x = op.operands[0]
        xs = _shape(x.type)
        last = len(xs) - 1
        if op.name == "ts.reduce":
            kind = ir.StringAttr(op.attributes["kind"]).value
            axes = list(ir.DenseI64ArrayAttr(op.attributes["axes"]))
            if len(axes) != 1:
                raise error_at(op.location, "reductions over several axes cannot run yet")
            if axes != [last]:
                x = self.move_last(x, axes[0], op)
                xs = tuple(s for i, s in enumerate(xs) if i != axes[0]) + (xs[axes[0]],)
            view = "col"
        elif op.name == "ts.softmax":
            if ir.IntegerAttr(op.attributes["axis"]).value != last:
                raise error_at(op.location, "softmax over other than the last axis cannot run yet")
            kind, view = "softmax", "rows"
        else:
            if ir.IntegerAttr(op.attributes["axis"]).value != last:
                raise error_at(op.location, "l2_norm over other than the last axis cannot run yet")
            kind, view = "l2", "col"
        o = self.out(op.results[0])
        acc = "f64" if _dtype(op.results[0].type).name == "f64" else "f32"
        self.plan.steps.append(Step(gk.row_op(kind, acc), (_rows(xs),), [("rows", self.slot(x)), (view, o[0])],
                                    {"BLOCK_C": _pow2(xs[-1])}, [o], op.name))

    def gating(self, op):
        pair = op.name == "ts.delta_connection"
        ops = list(op.operands)
        o = self.out(op.results[0])
        args = [("rows", self.slot(v)) for v in (ops[:2] if pair else ops[:1])] + [("full", self.slot(ops[-1])), ("rows", o[0])]
        f64 = any(_dtype(v.type).name == "f64" for v in ops)
        consts = {"DIST": float(ir.FloatAttr(op.attributes["distance"]).value)}
        if f64:
            consts["E"] = _shape(ops[-1].type)[-1]
        rows = _rows(_shape(ops[0].type))
        self.plan.steps.append(Step(gk.gating(pair, pair, f64), (-(-rows // 32),), args, consts, [o], op.name))

    def fused(self, op):
        from ..gdn import generated
        seg = list(ir.DenseI32ArrayAttr(op.attributes["operandSegmentSizes"]))
        ops = list(op.operands)
        n = seg[1]
        target, srcs, ws, coeffs = ops[0], ops[1:1 + n], ops[1 + n:1 + 2 * n], ops[1 + 2 * n:1 + 3 * n]
        residual = bool(seg[4])
        sparse = bool(ir.BoolAttr(op.attributes["sparse"]).value)
        dists = list(ir.DenseF64ArrayAttr(op.attributes["distances"]))
        coeff_slot, cidx = self.coefficients(op, coeffs)
        k = generated.fused_delta_gating(n, residual, sparse, "tensor")
        shape = _shape(op.results[0].type)
        ce = {f"D{i}": float(d) for i, d in enumerate(dists)}
        ce.update({f"C{i}": int(c) for i, c in enumerate(cidx)})
        ce.update(RESIDUAL=residual, SPARSE=sparse, BLOCK_R=32)
        rows = _rows(shape)
        if "tessera.threshold" in op.attributes:
            ce["THRESH"] = float(ir.FloatAttr(op.attributes["tessera.threshold"]).value)
        o = self.out(op.results[0])
        args = [("rows", self.slot(target))] + [("rows", self.slot(s)) for s in srcs] + \
            [("full", self.slot(w)) for w in ws] + [("flat", coeff_slot), ("rows", o[0])]
        # sm_90a: 64-row blocks, so the gating GEMMs run on wgmma (one warpgroup's M); elsewhere 32 rows
        # keep the mma.sync kernel at 134 registers (64 rows need 255 on sm_80)
        self.plan.steps.append(Step(k, lambda c: (-(-rows // c["BLOCK_R"]),), args, ce, [o], "fused_delta_gating",
                                    by_target={"sm_90a": {"BLOCK_R": 64}}))

    def fused_grad(self, op):
        """One program walks every row block: the weights' and coefficients' gradients are sums over all rows."""
        from ..gdn import generated
        ops, res = list(op.operands), list(op.results)
        n = (len(ops) - 2) // 3
        target, srcs, ws, coeffs, dy = ops[0], ops[1:1 + n], ops[1 + n:1 + 2 * n], ops[1 + 2 * n:1 + 3 * n], ops[-1]
        sparse = bool(ir.BoolAttr(op.attributes["sparse"]).value)
        dists = list(ir.DenseF64ArrayAttr(op.attributes["distances"]))
        coeff_slot, cidx = self.coefficients(op, coeffs)
        ce = {f"D{i}": float(d) for i, d in enumerate(dists)}
        ce.update({f"C{i}": int(c) for i, c in enumerate(cidx)})
        ce.update(SPARSE=sparse, BLOCK_R=32)
        if "tessera.threshold" in op.attributes:
            ce["THRESH"] = float(ir.FloatAttr(op.attributes["tessera.threshold"]).value)
        outs = [self.out(r) for r in res]
        views = ["rows"] * (1 + n) + ["full"] * n + ["flat"]
        args = [("rows", self.slot(target))] + [("rows", self.slot(s)) for s in srcs] + \
            [("full", self.slot(w)) for w in ws] + [("flat", coeff_slot), ("rows", self.slot(dy))] + \
            [(v, o[0]) for v, o in zip(views, outs)]
        self.plan.steps.append(Step(generated.fused_delta_gating_grad(n, sparse), (1,), args, ce, outs,
                                    "fused_delta_gating_grad"))

    def coefficients(self, op, coeffs):
        sources = []
        for c in coeffs:
            o = op_of(strip_casts(c))
            if o is not None and o.name == "tensor.extract":
                sources.append(("extract", self.slot(o.operands[0]), _flat_index(o)))
            elif o is not None and o.name == "arith.constant":
                sources.append(("const", None, float(o.attributes["value"].value)))
            else:
                raise error_at(op.location, "coefficients must be constants or elements of a tensor argument")
        if all(k == "const" for k, _, _ in sources):
            return self.constant_slot(np.array([v for _, _, v in sources], np.float32)), list(range(len(sources)))
        tensors = {s for k, s, _ in sources if k == "extract"}
        if len(tensors) != 1 or any(k == "const" for k, _, _ in sources):
            raise error_at(op.location, "coefficients must all come from one tensor (or all be constants)")
        return tensors.pop(), [i for _, _, i in sources]


def build_plan(module) -> Plan:
    f = next(op.operation for op in module.body.operations if op.operation.name == "func.func"
             and "tessera.function" in op.operation.attributes)
    b = _Builder(f.regions[0].blocks[0])
    for op in f.regions[0].blocks[0].operations:
        try:
            b.op(op.operation)
        except (TypeError, ValueError, KeyError, IndexError) as e:  # attributes IRDL does not constrain
            raise error_at(op.location, f"'{op.operation.name}' op is malformed ({type(e).__name__}: {e})") from None
    for st in b.plan.steps:
        st.examples = [b.example(a) for a in st.args]
    return b.plan
