"""`ts.add`, `ts.gemm`, ...: the graph-level operations used inside @ts.function bodies."""
from __future__ import annotations

from ..frontend.dsl import builtin as _b

subtract = _b("ts.subtract")
add = _b("ts.add")
multiply = _b("ts.multiply")
divide = _b("ts.divide")
maximum = _b("ts.maximum")
minimum = _b("ts.minimum")
exp = _b("ts.exp")
log = _b("ts.log")
sqrt = _b("ts.sqrt")
sigmoid = _b("ts.sigmoid")
tanh = _b("ts.tanh")
cast = _b("ts.cast")
reshape = _b("ts.reshape")
transpose = _b("ts.transpose")
concatenate = _b("ts.concatenate")
stack = _b("ts.stack")
sum = _b("ts.sum")  # noqa: A001
mean = _b("ts.mean")
max = _b("ts.max")  # noqa: A001 - NumPy's reductions: ts.max(x, axis=None, keepdims=False)
min = _b("ts.min")  # noqa: A001
zeros_like = _b("ts.zeros_like")
ones_like = _b("ts.ones_like")
gemm = _b("ts.gemm")
graph_constant = _b("ts.graph_constant")  # a NumPy array baked into the graph as a constant
expand_dims = _b("ts.expand_dims")
zeros = _b("ts.zeros")
ones = _b("ts.ones")
arange = _b("ts.arange")
diag = _b("ts.diag")
softmax = _b("ts.softmax")
