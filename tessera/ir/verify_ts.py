"""The graph-level (ts) ops' attribute rules that IRDL does not express: a dense array's element
type and an integer attribute's width. The passes read these attributes with the Python bindings,
which raise on the wrong array kind and abort the process on an integer wider than 64 bits, so
tessera-opt checks them before any pass runs. Registered into verify_tile's table."""
from __future__ import annotations

from mlir import ir

from .verify import _dense_array, _fail, _i64_array, _int_attr


def _f64_array(op, key):
    _dense_array(op, key, ir.DenseF64ArrayAttr, "f64")


def _rule(ints=(), i64s=(), f64s=()):
    def check(op):
        for k in ints:
            _int_attr(op, k)
        for k in i64s:
            _i64_array(op, k)
        for k in f64s:
            _f64_array(op, k)
    return check


def _collective(op):
    """A collective's axis size, dim and src are in range, and its result type is what the op makes of
    its operand's (the executor allocates and the VJP rules build from the result types)."""
    n = _int_attr(op, "size")
    if n < 1:
        _fail(f"attribute 'size' (the axis's number of ranks) must be at least 1, got {n}")
    shape = list(ir.RankedTensorType(op.operands[0].type).shape)
    want = list(shape)
    name = op.name
    if name in ("ts.all_gather", "ts.reduce_scatter"):
        dim = _int_attr(op, "dim")
        if not 0 <= dim < len(shape):
            _fail(f"attribute 'dim' ({dim}) must be a dim of the operand (rank {len(shape)})")
        if name == "ts.all_gather":
            want[dim] = shape[dim] * n
        else:
            if shape[dim] % n:
                _fail(f"dim {dim} of the operand ({shape[dim]}) does not split into {n} equal parts")
            want[dim] = shape[dim] // n
    if name == "ts.dist_broadcast":
        src = _int_attr(op, "src")
        if not 0 <= src < n:
            _fail(f"attribute 'src' ({src}) must be an axis rank in 0..{n - 1}")
    result = ir.RankedTensorType(op.results[0].type)
    operand = ir.RankedTensorType(op.operands[0].type)
    if list(result.shape) != want or result.element_type != operand.element_type:
        _fail(f"result type {result} must be {ir.RankedTensorType.get(want, operand.element_type)} "
              f"(from the operand {operand} over {n} ranks)")


TS_CHECKS = {
    "ts.all_reduce": _collective,
    "ts.all_gather": _collective,
    "ts.reduce_scatter": _collective,
    "ts.dist_broadcast": _collective,
    "ts.fused_delta_gating": _rule(ints=("sparse",), f64s=("distances",)),
    "ts.fused_delta_gating_grad": _rule(ints=("sparse",), f64s=("distances",)),
    "ts.dropout": _rule(ints=("seed",)),
    "ts.softmax": _rule(ints=("axis",)),
    "ts.l2_norm": _rule(ints=("axis", "keepdims")),
    "ts.reduce": _rule(ints=("keepdims",), i64s=("axes",)),
    "ts.transpose": _rule(i64s=("perm",)),
    "ts.slice": _rule(i64s=("offsets", "sizes", "squeeze")),
    "ts.concatenate": _rule(ints=("axis",)),
}
