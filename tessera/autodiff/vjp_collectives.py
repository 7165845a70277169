"""VJP rules of the ts collectives (entries of the one rule table, tessera.autodiff.vjp.RULES).

The convention: on every rank, the gradient is that of the SUM over all ranks of the per-rank results
(each rank seeds its own result's cotangent with 1). With it each rule is the collective's adjoint, so
the backward graph is again collectives that every rank runs in the same order:

  all_reduce sum       → all_reduce sum of the cotangent (the sum is its own adjoint)
  all_reduce mean      → all_reduce mean of the cotangent
  all_gather(dim)      → reduce_scatter sum (dim) of the cotangent
  reduce_scatter sum   → all_gather (dim) of the cotangent (mean: then divided by the axis size)
  dist_broadcast(src)  → on axis rank src, all_reduce sum of the cotangent; zero on the others

What this means for training: a data-parallel loss `all_reduce(local, "mean")` is the same on every rank,
and the sum over ranks counts it once per rank, so each rank's parameter gradient is the gradient of its
own local loss; all-reducing (mean) those over dp gives the full-batch gradient, as data-parallel
training does. Passing the replicated parameter through `dist.all_reduce(w, "mean")` inside the function
(the identity on its value) does that gradient all-reduce inside the graph. A loss replicated over tp
(computed from all_gather'ed activations) counts n_tp times: divide it by n_tp, or end in a
reduce_scatter so each rank's loss is its own part. max and min are not differentiable yet."""
from __future__ import annotations

from mlir import ir

from ..graph import ops_dist
from ..ir.locations import error_at
from .vjp import RULES, div, mul, rule

__all__ = ["RULES"]   # the one rule table, these entries included (tessera.autodiff.transform reads it here)


def _attrs(op):
    a = op.attributes
    out = {"axis": ir.StringAttr(a["axis"]).value, "size": ir.IntegerAttr(a["size"]).value}
    for k in ("dim", "src"):
        if k in a:
            out[k] = ir.IntegerAttr(a[k]).value
    if "op" in a:
        out["op"] = ir.StringAttr(a["op"]).value
    return out


def _differentiable(op, kind):
    if kind not in ("sum", "mean"):
        raise error_at(op.location, f"'{op.name}' with op = \"{kind}\" is not differentiable yet (only sum and mean)")


@rule("ts.all_reduce")
def _all_reduce(ins, outs, cts, op):
    a = _attrs(op)
    _differentiable(op, a["op"])
    return [ops_dist.all_reduce(cts[0], a["op"], a["axis"], a["size"], ops_dist.mesh_of(op))]


@rule("ts.all_gather")
def _all_gather(ins, outs, cts, op):
    a = _attrs(op)
    return [ops_dist.reduce_scatter(cts[0], "sum", a["axis"], a["dim"], a["size"], ops_dist.mesh_of(op))]


@rule("ts.reduce_scatter")
def _reduce_scatter(ins, outs, cts, op):
    a = _attrs(op)
    _differentiable(op, a["op"])
    gathered = ops_dist.all_gather(cts[0], a["axis"], a["dim"], a["size"], ops_dist.mesh_of(op))
    return [div(gathered, float(a["size"])) if a["op"] == "mean" else gathered]


@rule("ts.dist_broadcast")
def _dist_broadcast(ins, outs, cts, op):
    a = _attrs(op)
    mesh = ops_dist.mesh_of(op)   # (the forward's: the body's mesh block has closed by now)
    total = ops_dist.all_reduce(cts[0], "sum", a["axis"], a["size"], mesh)
    # every rank runs the all_reduce (a collective): the others scale it to zero rather than leave it
    # unused, which tessera-erase-dead-graph-ops would erase on them only (the ranks would then disagree)
    here = mesh.rank(a["axis"])
    return [total if here == a["src"] else mul(total, 0.0)]
