"""The graph-level (ts) ops' attribute rules that IRDL does not express: a dense array's element
type and an integer attribute's width. The passes read these attributes with the Python bindings,
which raise on the wrong array kind and abort the process on an integer wider than 64 bits, so
tessera-opt checks them before any pass runs. Registered into verify_tile's table."""
from __future__ import annotations

from mlir import ir

from .verify import _dense_array, _i64_array, _int_attr


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


TS_CHECKS = {
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
