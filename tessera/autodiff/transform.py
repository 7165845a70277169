"""Reverse mode as a transformation of a traced `ts` function: the forward ops stay, the backward ops
(one VJP rule per op, tessera.autodiff.vjp) are appended before the return in reverse program order,
and the function returns what was asked for (the value and/or the gradients). Only ops between the
differentiated arguments and the differentiated output get backward ops; dead forward ops are erased.

Each backward op carries the location of the forward op it differentiates, so an error in the backward
graph points at the user's line."""
from __future__ import annotations

from mlir import ir
from mlir.dialects import func

from ..errors import CompilationError
from ..frontend import dsl
from ..frontend.codegen.base import dtype_of
from ..frontend.function import GraphTensor
from ..ir.locations import error_at
from ..passes.graph_match import erase_dead
from ..graph.ops import const
from .vjp import acc_dtype, add, cast, reshape, zeros
from .vjp_collectives import RULES   # the rule table, with the collectives' rules added


CKPT, RECOMPUTE, BACKWARD = "tessera.checkpoint", "tessera.recompute", "tessera.backward"
RECOMPUTED_AS = "tessera.recomputed_as"


def tensor_of(v) -> GraphTensor:
    t = v.type
    if isinstance(t, ir.RankedTensorType):
        return GraphTensor(v, tuple(t.shape), dtype_of(t.element_type))
    return GraphTensor(v, None, dtype_of(t))


class _Emitter:
    """Stands in for the tracer while backward ops are emitted: ops get the forward op's location."""

    def __init__(self, tracer):
        self.tracer, self.location = tracer, ir.Location.unknown()
        self.baked, self.function = getattr(tracer, "baked", []), getattr(tracer, "function", None)

    def loc(self):
        return self.location


def graph_func(module):
    for op in module.body.operations:
        if op.operation.name == "func.func" and "tessera.function" in op.attributes:
            return op
    raise CompilationError("no @ts.function in the module")


def differentiate(traced, wrt, output=0, output_gradients=None, keep=(), pipeline=None):
    """Rewrite `traced.module`'s function to return [its results at `keep`] + [the gradient of result
    `output` w.r.t. each function argument in `wrt`] (each in its argument's dtype and shape).

    output_gradients: None (the output must have one element: its cotangent is 1), or the index of a
    function argument that holds the output's cotangent (appended by the caller). pipeline: graph passes run
    on the forward graph first (the default prune + fuse pipeline of graph functions)."""
    if pipeline:   # the graph passes first (prune, fuse): the gradient is of the function that runs, and a
        from ..compiler import run_pipeline   # fused aggregation gets its one-kernel backward rule
        with traced.tracer.ctx, ir.Location.unknown():
            run_pipeline(traced.module, pipeline)
    f = graph_func(traced.module)
    entry = f.regions[0].blocks[0]
    ret = list(entry.operations)[-1]
    results = list(ret.operands)
    y = tensor_of(results[output])
    args = [tensor_of(a) for a in entry.arguments]
    with traced.tracer.ctx, ir.Location.unknown():
        emitter = _Emitter(traced.tracer)
        n_forward = len(list(entry.operations)) - 1
        dsl.TRACING.append(emitter)
        try:
            with ir.InsertionPoint(ret):
                grads = _backward(entry, ret, args, y, wrt, output_gradients, emitter)
                kept = [results[i] for i in keep]
                emitter.location = ret.location
                func.ReturnOp(kept + [g.v for g in grads])
        finally:
            dsl.TRACING.pop()
        ret.erase()
        for op in list(entry.operations)[n_forward:-1]:   # the backward pass (saved_activation_bytes)
            if RECOMPUTE not in op.attributes:
                op.attributes[BACKWARD] = ir.UnitAttr.get()
        traced.saved_bytes = saved_activation_bytes(f)
        ft = ir.FunctionType(ir.TypeAttr(f.attributes["function_type"]).value)
        f.attributes["function_type"] = ir.TypeAttr.get(ir.FunctionType.get(
            list(ft.inputs), [v.type for v in kept] + [g.v.type for g in grads]))
        erase_dead(f.operation)
        traced.module.operation.verify()
    return traced


def _backward(entry, ret, args, y, wrt, output_gradients, emitter):
    sources = [args[i].v for i in wrt]
    if output_gradients is not None:
        seed = args[output_gradients]
    else:
        seed = None
        n = 1
        for s in (y.shape or ()):
            n *= s
        if n != 1:
            o = y.v.owner
            raise error_at(getattr(o, "location", ret.location), (
                f"the function returns a tensor of shape {list(y.shape)}: a gradient needs a scalar loss (a 0-d or "
                "1-element result), or output_gradients= (the cotangent of the output)"))
    cts = cotangents([op for op in entry.operations if op != ret], y, seed, sources, emitter)
    emitter.location = ret.location
    grads = []
    for i in wrt:
        a = args[i]
        g = cts.get(a.v)
        if g is None:   # the output does not depend on it: zeros (a fresh array on every call)
            g = zeros(a.shape, acc_dtype(a.dtype))
            g = reshape(g, a.shape) if a.shape == () else g
        g = cast(g, a.dtype)
        grads.append(g)
    return grads


def cotangents(ops, y, seed, sources, emitter):
    """{value: cotangent} for every value between `sources` and `y` (ir.Values), emitting the backward ops of
    `ops` (forward program order) at the current insertion point; `seed` is y's cotangent (a GraphTensor of
    y's shape), or None for a 1-element y (cotangent 1)."""
    active = _active(ops, sources)
    if y.v not in active:
        return {}
    emitter.location = getattr(y.v.owner, "location", emitter.location)
    if seed is None:
        seed = const(1.0, y.shape or (1,), acc_dtype(y.dtype))
    if seed.shape != (y.shape if y.shape is not None else (1,)):
        raise CompilationError(f"output_gradients has shape {list(seed.shape)}, the output {list(y.shape or ())}")
    cts = {y.v: cast(seed, acc_dtype(y.dtype))}
    recomputed, remap = set(), {}
    for op in reversed(ops):
        if not any(r in cts for r in op.results):
            continue
        operands = list(op.operands)
        if not any(v in active for v in operands):
            continue
        rule = RULES.get(op.name)
        if rule is None:
            raise error_at(op.location, f"no gradient rule for '{op.name}': this op cannot be differentiated yet")
        emitter.location = op.location
        region = op.attributes[CKPT] if CKPT in op.attributes else None
        if region is not None and region not in recomputed:   # the region's values, again, from its inputs
            recomputed.add(region)
            _recompute([o for o in ops if CKPT in o.attributes and o.attributes[CKPT] == region], remap)
            emitter.location = op.location
        ins = [tensor_of(remap.get(v, v)) for v in operands]
        outs = [tensor_of(remap.get(r, r)) for r in op.results]
        out_cts = [cts.get(r) for r in op.results]
        for v, x, ct in zip(operands, ins, rule(ins, outs, out_cts, op)):
            if ct is None or v not in active:
                continue
            ct = cast(ct, acc_dtype(x.dtype))
            want = x.shape if x.shape is not None else (1,)
            if ct.shape != want:
                raise error_at(op.location, f"internal error: the gradient rule of '{op.name}' gave shape "
                                            f"{list(ct.shape)} for an operand of shape {list(want)}; please report it")
            cts[v] = add(cts[v], ct) if v in cts else ct
    return cts


def _recompute(region_ops, remap):
    """Copies of a checkpointed region's ops at the insertion point, reading the copies of each other's
    results; remap: forward value -> its copy."""
    i64 = ir.IntegerType.get_signless(64)
    for op in region_ops:
        clone = op.clone(ir.InsertionPoint.current)
        for i, v in enumerate(op.operands):
            if v in remap:
                clone.operands[i] = remap[v]
        del clone.attributes[CKPT]
        pair = ir.IntegerAttr.get(i64, len(remap) + 1)   # pairs the copy with its original
        clone.attributes[RECOMPUTE] = pair
        op.attributes[RECOMPUTED_AS] = pair
        for r, c in zip(op.results, clone.results):
            remap[r] = c


def saved_activation_bytes(func_op):
    """(with checkpoints, without): bytes of the values forward ops compute that the backward pass reads.
    With checkpoints the backward reads the recomputed copies, and only the regions' inputs are kept; without,
    it would read the originals of those copies."""
    ops = list(func_op.regions[0].blocks[0].operations)
    copies = {}
    for op in ops:
        if RECOMPUTE in op.attributes:
            copies[ir.IntegerAttr(op.attributes[RECOMPUTE]).value] = op

    def read_by_backward(v, also_recompute):
        return any(BACKWARD in u.owner.attributes or (also_recompute and RECOMPUTE in u.owner.attributes)
                   for u in v.uses)
    with_ckpt = without = 0
    for op in ops:
        if BACKWARD in op.attributes or RECOMPUTE in op.attributes or op.name == "arith.constant":
            continue
        copy = copies.get(ir.IntegerAttr(op.attributes[RECOMPUTED_AS]).value) if RECOMPUTED_AS in op.attributes else None
        for k, r in enumerate(op.results):
            if not isinstance(r.type, ir.RankedTensorType):
                continue
            t = ir.RankedTensorType(r.type)
            n = dtype_of(t.element_type).bits // 8
            for d in t.shape:
                n *= d
            if read_by_backward(r, True):
                with_ckpt += n
            if read_by_backward(r, False) or (copy is not None and read_by_backward(copy.results[k], False)):
                without += n
    return with_ckpt, without


def _active(ops, roots):
    """The values that depend on `roots` (forward program order)."""
    active = set(roots)
    for op in ops:
        if any(v in active for v in op.operands):
            active.update(op.results)
    return active


def check_differentiable(names, dtypes, wrt):
    for i in wrt:
        if not dtypes[i].is_float:
            raise CompilationError(f"cannot differentiate with respect to '{names[i]}': it is {dtypes[i].name}, "
                                   "and gradients are for floating-point inputs")

