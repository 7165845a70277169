"""tessera-pipeline-mma: mark K loops whose tile.mma runs on mma.sync with a cp.async pipeline.

A K loop (`k_loops.match`: one tile.mma of two plain window loads, the accumulator the only
loop-carried value, starting as a splat) qualifies when both operands are f16 or both bf16, the
tiles are 2-D with M, N and K multiples of 16, and the loop is not already marked `tessera.wgmma`.
It gets `tessera.mma_pipeline`; `tessera-lower-tile-to-gpu` then lowers it with
`backends/nvidia/mma_pipeline.py` (`num_stages` shared-memory slots filled by cp.async, ldmatrix
from swizzled slots, accumulators in registers across the loop), or, when no warp tiling fits
`num_warps`, the generic way.
"""
from __future__ import annotations

from mlir import ir

from . import k_loops

name = "tessera-pipeline-mma"


def _matches(loop) -> bool:
    if "tessera.wgmma" in loop.attributes:
        return False
    found = k_loops.match(loop)
    if found is None:
        return False
    _, a_ld, b_ld = found
    ta, tb_ = (ir.RankedTensorType(x.results[0].type) for x in (a_ld, b_ld))
    if ta.rank != 2 or tb_.rank != 2 or str(ta.element_type) != str(tb_.element_type) \
            or str(ta.element_type) not in ("f16", "bf16"):
        return False
    (m, k), (_, n) = list(ta.shape), list(tb_.shape)
    return m % 16 == 0 and n % 16 == 0 and k % 16 == 0


def run(module_op):
    k_loops.mark(module_op, _matches, "tessera.mma_pipeline")
