"""`@ts.checkpoint` and `with ts.checkpoint_scope():` (activation checkpointing, seeds 000/001).

While a function is traced, the ops a checkpointed call or scope records are marked as one region
(`tessera.checkpoint = <id>`). When the graph is differentiated, the backward pass does not read the
region's values: when the reverse walk reaches the region it emits a copy of the region's ops (marked
`tessera.recompute`, so CSE does not merge them back) from the region's inputs, and the VJP rules read the
copies. So only the region's inputs (and outputs the rest of the forward uses) stay alive from the forward
pass to the backward pass; the executor frees each intermediate after its last reader. Outside a trace
(an eagerly run body, host code) both are no-ops. `CompiledFunction.saved_activation_bytes()` reports what
is kept from the forward for the backward, with and without checkpoints."""
from __future__ import annotations

import functools

from ..frontend import dsl

ATTR = "tessera.checkpoint"


class checkpoint_scope:  # noqa: N801 - the seeds' spelling: `with ts.checkpoint_scope():`
    """Ops traced inside are one checkpointed region (recomputed in the backward pass, not stored)."""

    def __enter__(self):
        self.block = self.start = None
        if dsl.TRACING and hasattr(dsl.TRACING[-1], "ctx"):
            from mlir import ir
            self.block = ir.InsertionPoint.current.block
            self.start = len(list(self.block.operations))
        return self

    def __exit__(self, *exc):
        if self.block is None or exc[0] is not None:
            return False
        from mlir import ir
        tracer = dsl.TRACING[-1]
        tracer.checkpoints = getattr(tracer, "checkpoints", 0) + 1
        region = ir.IntegerAttr.get(ir.IntegerType.get_signless(64), tracer.checkpoints)
        for op in list(self.block.operations)[self.start:]:
            if ATTR not in op.attributes:   # an inner scope keeps its own region
                op.attributes[ATTR] = region
        return False


def checkpoint(fn):
    """`@ts.checkpoint`: `fn` becomes a graph function whose body is a checkpointed region wherever it is
    traced (called from another @ts.function, differentiated, or compiled on its own)."""
    from ..frontend.function import GraphFunction
    inner = fn.fn if isinstance(fn, GraphFunction) else fn

    @functools.wraps(inner)
    def scoped(*args, **kwargs):
        with checkpoint_scope():
            return inner(*args, **kwargs)
    gf = GraphFunction(scoped, getattr(fn, "input_shapes", None), getattr(fn, "config", None))
    gf.checkpointed = True
    return gf
