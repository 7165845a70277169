"""Typed builders for the tile dialect (IRDL ops have no generated Python classes).

Every builder takes the user's source location; nothing here formats IR text except the
parametric type `!tile.window<...>` (IRDL types have no typed constructor in these bindings).
"""
from __future__ import annotations

from typing import Sequence

from mlir import ir

_I64 = None


def _i64():
    return ir.IntegerType.get_signless(64)


def _i32():
    return ir.IntegerType.get_signless(32)


def index_type():
    return ir.IndexType.get()


def window_type(shape: Sequence[int], elem: "ir.Type") -> "ir.Type":
    dims = ", ".join(str(int(s)) for s in shape)
    arr = f"array<i64: {dims}>" if dims else "array<i64>"
    return ir.Type.parse(f"!tile.window<{arr}, {elem}>")


def window_shape_elem(t: "ir.Type"):
    """(shape, element type) of a `!tile.window` type."""
    s = str(t)
    assert s.startswith("!tile.window<"), s
    inner = s[len("!tile.window<"):-1]
    arr, elem = inner.split(">", 1)
    nums = arr[len("array<i64"):].lstrip(":").strip()
    shape = tuple(int(x) for x in nums.split(",")) if nums else ()
    return shape, ir.Type.parse(elem.lstrip(", ").strip())


def is_window(t) -> bool:
    return str(t).startswith("!tile.window<")


def shared_type(shape: Sequence[int], elem: "ir.Type") -> "ir.Type":
    space = ir.Attribute.parse("#gpu.address_space<workgroup>")
    return ir.MemRefType.get(list(shape), elem, memory_space=space)


def global_type(rank: int, elem: "ir.Type") -> "ir.Type":
    dyn = ir.ShapedType.get_dynamic_size()
    layout = ir.StridedLayoutAttr.get(ir.ShapedType.get_dynamic_stride_or_offset(), [ir.ShapedType.get_dynamic_stride_or_offset()] * rank)
    return ir.MemRefType.get([dyn] * rank, elem, layout=layout)


def _create(name, results=(), operands=(), attributes=None, loc=None):
    return ir.Operation.create(name, results=list(results), operands=list(operands),
                               attributes=attributes or {}, loc=loc)


def program_id(axis: int, loc=None):
    return _create("tile.program_id", [index_type()], [], {"axis": ir.IntegerAttr.get(_i32(), axis)}, loc).result


def num_programs(axis: int, loc=None):
    return _create("tile.num_programs", [index_type()], [], {"axis": ir.IntegerAttr.get(_i32(), axis)}, loc).result


def view(base, offsets, sizes: Sequence[int], squeeze: Sequence[bool], loc=None):
    elem = ir.MemRefType(base.type).element_type
    shape = [s for s, q in zip(sizes, squeeze) if not q]
    return _create("tile.view", [window_type(shape, elem)], [base, *offsets],
                   {"sizes": ir.DenseI64ArrayAttr.get([int(s) for s in sizes]),
                    "squeeze": ir.DenseI64ArrayAttr.get([int(bool(q)) for q in squeeze])}, loc).result


def load(src, result_type, mask=None, other=None, loc=None):
    ops = [src] + ([mask] if mask is not None else []) + ([other] if other is not None else [])
    seg = ir.DenseI32ArrayAttr.get([1, int(mask is not None), int(other is not None)])
    return _create("tile.load", [result_type], ops, {"operandSegmentSizes": seg}, loc).result


def store(dst, value, mask=None, loc=None):
    ops = [dst, value] + ([mask] if mask is not None else [])
    seg = ir.DenseI32ArrayAttr.get([1, 1, int(mask is not None)])
    _create("tile.store", [], ops, {"operandSegmentSizes": seg}, loc)


def ops_named(root, *names):
    """The ops under `root` with one of these names, in walk order (collected first: passes rewrite them)."""
    found = []

    def visit(op):
        if op.name in names:
            found.append(op)
        return ir.WalkResult.ADVANCE
    root.walk(visit)
    return found


def known_int(v):
    """The integer value `v` always holds (an arith.constant, or a tile.broadcast of one), else None."""
    op = v.owner
    while not isinstance(op, ir.Block) and op.name == "tile.broadcast":
        op = op.operands[0].owner
    if isinstance(op, ir.Block) or op.name != "arith.constant":
        return None
    attr = op.attributes["value"]
    if isinstance(attr, ir.IntegerAttr):
        return attr.value
    if isinstance(attr, ir.DenseIntElementsAttr) and attr.is_splat:
        return ir.IntegerAttr(attr.get_splat_value()).value
    return None


def list_get(table, index, result_type, loc=None):
    """Element `index` of a list of global tensors (its table: address, sizes, strides per row)."""
    return _create("tile.list_get", [result_type], [table, index], {}, loc).result


def alloc_shared(shape, elem, swizzle: str | None = None, loc=None):
    return _create("tile.alloc_shared", [shared_type(shape, elem)], [],
                   {"swizzle": ir.StringAttr.get(swizzle or "none")}, loc).result


def cp_async(dst, src, bypass_l1: bool = False, loc=None):
    _create("tile.cp_async", [], [dst, src],
            {"bypass_l1": ir.BoolAttr.get(bool(bypass_l1))}, loc)


def cp_commit_group(loc=None):
    _create("tile.cp_commit_group", loc=loc)


def cp_wait_group(pending: int, loc=None):
    _create("tile.cp_wait_group", [], [], {"pending": ir.IntegerAttr.get(_i32(), pending)}, loc)


def barrier(loc=None):
    _create("tile.barrier", loc=loc)


def mma(a, b, acc=None, result_type=None, loc=None):
    ops = [a, b] + ([acc] if acc is not None else [])
    seg = ir.DenseI32ArrayAttr.get([1, 1, int(acc is not None)])
    return _create("tile.mma", [result_type], ops, {"operandSegmentSizes": seg}, loc).result


def reduce(x, kind: str, axis: int, result_type, loc=None):
    return _create("tile.reduce", [result_type], [x],
                   {"kind": ir.StringAttr.get(kind), "axis": ir.IntegerAttr.get(_i64(), axis)}, loc).result


def broadcast(x, result_type, loc=None):
    return _create("tile.broadcast", [result_type], [x], {}, loc).result


def arange(start: int, end: int, loc=None):
    t = ir.RankedTensorType.get([end - start], _i32())
    return _create("tile.arange", [t], [], {"start": ir.IntegerAttr.get(_i64(), start),
                                            "end": ir.IntegerAttr.get(_i64(), end)}, loc).result


def operand_groups(op, required: int, optional: int):
    """Sizes of (required..., optional...) operand groups of a tile op. IRDL only insists on
    `operandSegmentSizes` when an op has several optional operands; with one it may be absent."""
    if "operandSegmentSizes" in op.attributes:
        return list(ir.DenseI32ArrayAttr(op.attributes["operandSegmentSizes"]))
    n = len(op.operands)
    extra = n - required
    if optional != 1 or extra not in (0, 1):
        raise ValueError(f"{op.name}: operandSegmentSizes is needed to tell its optional operands apart")
    return [1] * required + [extra]


_GROUPS = {"tile.load": (1, 2), "tile.store": (2, 1), "tile.mma": (2, 1)}


def segments(op):
    """Operand group sizes of tile.load (src, mask, other), tile.store (dst, value, mask) and
    tile.mma (a, b, acc)."""
    return operand_groups(op, *_GROUPS[op.name])


def operands(op):
    """Operands of tile.load (src, mask, other), tile.store (dst, value, mask) or tile.mma
    (a, b, acc), with None for an absent optional operand."""
    out, it = [], iter(op.operands)
    for n in segments(op):
        out.append(next(it) if n else None)
    return tuple(out)
