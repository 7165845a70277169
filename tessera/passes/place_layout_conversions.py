"""tessera-place-layout-conversions{arch=sm_80 num_warps=4 warp_specialize=0}: where tiles leave the mma layout.

Decides where tile values leave the mma.sync accumulator layout, as explicit `tile.convert_layout` ops.

Sources: the result of a `tessera.mma_pipeline` K loop, and a `tile.mma` without accumulator operand that
the lowering runs warp-tiled on mma.sync (not on wgmma). Their accumulators live in registers in the
mma layout of a warp grid (`mma_pipeline.warp_grid`, as the lowering computes it; docs/nvidia.md, "MMA
layouts"). Every other tile value is in the blocked layout.

Minimisation: the pass follows a source forward through elementwise ops (arith/math on tiles whose other
tile operands are splat constants or broadcast scalars, which it clones into the chain). When that
closure ends only in whole-tile stores to 2-D global windows (no mask; 16- or 32-bit elements), it stays
in the mma layout: every op of it is marked `tessera.layout = "mma"` and the stores write from registers,
with no conversion at all. Otherwise one `tile.convert_layout {layout = "blocked"}` right after the source
serves every use (one shared-memory exchange). Sources and marked ops carry `tessera.mma_grid = [wm, wn]`.

Assumes `tessera-pipeline-mma` (and on sm_90a `tessera-use-wgmma`) ran; `tessera-lower-tile-to-gpu`
honours the marks. wgmma accumulators are converted inside their own lowering.
"""
from __future__ import annotations

from mlir import ir

from ..backends.nvidia import mma_pipeline as P, mma_sync, wgmma_tile
from ..ir import builders as tb
from . import k_loops, options

name = "tessera-place-layout-conversions"

LAYOUT, GRID = "tessera.layout", "tessera.mma_grid"
_ELEMENTWISE = ("arith.", "math.")


def _i64s(xs):
    i64 = ir.IntegerType.get_signless(64)
    return ir.ArrayAttr.get([ir.IntegerAttr.get(i64, int(x)) for x in xs])


def _is_tensor(t):
    return isinstance(t, ir.RankedTensorType)


def _sources(f, arch, warps, ws):
    """(value, its defining op, warp grid) of every mma-layout source of a kernel."""
    out = []

    def visit(op):
        if op.name == "scf.for" and "tessera.mma_pipeline" in op.attributes:
            found = k_loops.match(op)
            if found is not None:
                _, a_ld, b_ld = found
                (m, _), (_, n) = [list(ir.RankedTensorType(x.results[0].type).shape) for x in (a_ld, b_ld)]
                grid = P.warp_grid(m, n, warps)
                if grid is not None:
                    out.append((op.results[0], op, grid))
        elif op.name == "tile.mma":
            a, b, acc = tb.operands(op)
            ta, tb_ = ir.RankedTensorType(a.type), ir.RankedTensorType(b.type)
            (m, k), (_, n) = list(ta.shape), list(tb_.shape)
            ae, be = ta.element_type, tb_.element_type
            if acc is None and mma_sync.applies(ae, be, m, n, k) and n % 16 == 0 \
                    and not wgmma_tile.applies(arch, warps * 32, ws, ae, be, m, n, k) \
                    and not _in_marked_loop(op):
                grid = P.warp_grid(m, n, warps, use_all=False)
                if grid is not None:
                    out.append((op.results[0], op, grid))
        return ir.WalkResult.ADVANCE
    f.walk(visit)
    return out


def _in_marked_loop(op):
    parent = op.parent
    return parent is not None and parent.name == "scf.for" and \
        ("tessera.mma_pipeline" in parent.attributes or "tessera.wgmma" in parent.attributes)


def _splat(v):
    """Whether v is a tile every thread can make in any layout: a splat constant or a broadcast scalar."""
    o = v.owner
    if isinstance(o, ir.Block):
        return False
    if o.name == "arith.constant":
        return isinstance(o.attributes["value"], ir.DenseElementsAttr) and ir.DenseElementsAttr(o.attributes["value"]).is_splat
    return o.name == "tile.broadcast" and not _is_tensor(o.operands[0].type)


def _storable(op, shape):
    """A whole-tile, unmasked store of the value to a 2-D global window, 16- or 32-bit elements."""
    dst, value, mask = tb.operands(op)
    if mask is not None or not tb.is_window(dst.type) or dst.owner.name != "tile.view":
        return False
    wshape, elem = tb.window_shape_elem(dst.type)
    if list(wshape) != list(shape) or any(bool(x) for x in ir.DenseI64ArrayAttr(dst.owner.attributes["squeeze"])):
        return False
    width = getattr(elem, "width", None)
    return len(list(dst.owner.operands)) == 3 and width in (16, 32) and value.owner != dst.owner


def _closure(src, shape):
    """(elementwise ops, stores) reached from src, or None when some use needs the blocked layout."""
    ops, stores, todo, seen = [], [], [src], []
    while todo:
        v = todo.pop()
        for use in v.uses:
            user = use.owner
            if any(user == s for s in seen):
                continue
            if user.name == "tile.store" and use.operand_number == 1 and _storable(user, shape):
                seen.append(user)
                stores.append(user)
                continue
            if not user.name.startswith(_ELEMENTWISE) or len(user.results) != 1 \
                    or not _is_tensor(user.results[0].type) or list(ir.RankedTensorType(user.results[0].type).shape) != shape:
                return None
            seen.append(user)
            ops.append(user)
            todo.append(user.results[0])
    for op in ops:   # every other tile operand must be producible in the mma layout
        for o in op.operands:
            if _is_tensor(o.type) and not _splat(o) and not any(o.owner == x for x in ops) and o != src:
                return None
    return ops, stores


def _mark(op, grid):
    op.attributes[LAYOUT] = ir.StringAttr.get("mma")
    op.attributes[GRID] = _i64s(grid)


OPTIONS = {"arch": options.ARCH, "num_warps": options.NUM_WARPS, "warp_specialize": options.FLAG}


def run(module_op, arch="sm_80", num_warps=4, warp_specialize=False):
    warps = int(num_warps)
    ws = str(warp_specialize).lower() in ("1", "true")
    for f in module_op.regions[0].blocks[0].operations:
        if f.operation.name != "func.func" or "tessera.kernel" not in f.attributes:
            continue
        for value, src, grid in _sources(f.operation, arch, warps, ws):
            shape = list(ir.RankedTensorType(value.type).shape)
            _mark(src, grid)
            found = _closure(value, shape)
            if found is not None:
                src.attributes["tessera.stored_from_registers"] = ir.UnitAttr.get()
                ops, stores = found
                for op in ops + stores:
                    _mark(op, grid)
                for op in ops:   # splat operands: a copy of their own in the chain
                    for i, o in enumerate(list(op.operands)):
                        if _is_tensor(o.type) and _splat(o) and LAYOUT not in o.owner.attributes:
                            with ir.InsertionPoint(op):
                                copy = o.owner.clone()
                            _mark(copy, grid)
                            original = o.owner
                            op.operands[i] = copy.results[0]
                            if not list(original.results[0].uses):
                                original.erase()
                continue
            after = src.operation if hasattr(src, "operation") else src
            with ir.InsertionPoint.after(after), after.location:
                conv = tb._create("tile.convert_layout", [value.type], [value],
                                  {"layout": ir.StringAttr.get("blocked")}, after.location)
            conv.attributes[GRID] = _i64s(grid)
            value.replace_all_uses_with(conv.result)
            conv.operands[0] = value
