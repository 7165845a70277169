"""tessera-use-wgmma{num_warps=4 warp_specialize=0}: mark K loops whose tile.mma can run as Hopper warpgroup MMA.

The loop gets `tessera.wgmma` when it is a K loop (`k_loops.match`: one tile.mma of two plain
window loads, the accumulator the only loop-carried value) whose loads are TMA-marked
(`tessera-use-tma`) BM×64 A and 64×BN B tiles of the same 16-bit type, whose accumulator starts as
zeros, and the CTA is one or two consumer warpgroups (num_warps 4 or 8) that split BM: BM a multiple
of 64 per warpgroup, BN a multiple of 8 up to 256 (wgmma's N; B still arrives as 128-byte swizzled TMA boxes of 64
columns, the last one partly unused), and at most
128 accumulator registers per thread ((BM / warpgroups)·BN ≤ 16384).
`tessera-lower-tile-to-gpu{arch=sm_90a}` then lowers the loop to TMA loads into `num_stages`
shared-memory slots with mbarriers and `wgmma.mma_async`. With `warp_specialize=1` one more warpgroup
(num_warps 8 or 12) is the TMA producer.
"""
from __future__ import annotations

from mlir import ir

from . import k_loops, options

name = "tessera-use-wgmma"


def tile_ok(bm, bn, bk, warpgroups) -> bool:
    rows = bm // warpgroups
    return bk == 64 and bm % (64 * warpgroups) == 0 and bm <= 256 and bn % 8 == 0 and 8 <= bn <= 256 \
        and rows * bn <= 16384


def _matches(loop, warpgroups) -> bool:
    found = k_loops.match(loop)
    if found is None or k_loops.splat_init(loop) != 0.0:
        return False
    _, a_ld, b_ld = found
    if any("tessera.tma" not in ld.attributes for ld in (a_ld, b_ld)):
        return False
    (bm, bk), (bk2, bn) = [list(ir.RankedTensorType(ld.results[0].type).shape) for ld in (a_ld, b_ld)]
    if bk != bk2 or not tile_ok(bm, bn, bk, warpgroups):
        return False
    return str(ir.RankedTensorType(a_ld.results[0].type).element_type) == \
        str(ir.RankedTensorType(b_ld.results[0].type).element_type)


OPTIONS = {"num_warps": options.NUM_WARPS, "warp_specialize": options.FLAG}


def run(module_op, num_warps=4, warp_specialize=False):
    """With warp_specialize, one of the num_warps / 4 warpgroups is the TMA producer: the consumers are
    the others (num_warps 8 or 12)."""
    ws = str(warp_specialize).lower() in ("1", "true")
    consumers = int(num_warps) // 4 - (1 if ws else 0)
    if int(num_warps) % 4 or consumers not in (1, 2):
        return
    warpgroups = consumers
    k_loops.mark(module_op, lambda loop: _matches(loop, warpgroups), "tessera.wgmma")
