"""tessera-erase-dead-graph-ops: erase graph-level values nothing uses.

A traced @ts.function may compute values it never returns (a debugging intermediate, a branch of a
model the caller switched off, the forward results a gradient does not need). Our ts ops are defined
in IRDL, which cannot declare them side-effect free, so MLIR's canonicalize keeps them; left in, each
would become a kernel launch. This pass erases every arith/math/tensor/ts op whose results are all
unused, to a fixpoint, in every function of the module. Ops without results are kept.
"""
from __future__ import annotations

from .graph_match import erase_dead

name = "tessera-erase-dead-graph-ops"


def run(module_op):
    for op in module_op.regions[0].blocks[0].operations:
        if op.operation.name == "func.func":
            erase_dead(op.operation)
