"""Semantic checks of tile ops beyond what IRDL checks (DESIGN §6).

`verify_tile(module_op)` walks the IR, reports every violation through MLIR's diagnostic system
(`op.location.emit_error`, so a diagnostic handler or `tessera-opt --verify-diagnostics` sees it)
and returns False if there was any. Messages read like MLIR's: `'tile.mma' op ...`.

The rules: loads/stores read and write a `!tile.window` (from tile.view) or a shared buffer (a
static memref in `#gpu.address_space<workgroup>`); tiles are statically shaped ranked tensors and a
rank-0 window loads/stores a bare scalar; masks are i1 of the value's shape; mma is MxK @ KxN → MxN
f32; reduce drops one axis; broadcast is NumPy's right-aligned rule; arange is tensor<(end-start)xi32>.
"""
from __future__ import annotations

import re

from mlir import ir

from . import builders as tb

_WINDOW_RE = re.compile(r"^!tile\.window<array<([^:>]+)(?::([^>]*))?>\s*,\s*(.+)>$")
_WORKGROUP = "#gpu.address_space<workgroup>"
_REDUCE_KINDS = ("sum", "max", "min")
# (op, operand number) where a !tile.window may be used
_WINDOW_USES = {("tile.load", 0), ("tile.store", 0), ("tile.cp_async", 1)}


class _Invalid(Exception):
    """One rule violated; the message is emitted at the op's location."""


def _fail(msg):
    raise _Invalid(msg)


def _opname(op) -> str:
    return getattr(op, "operation", op).name


def _window_info(t):
    """(shape, element type) of a `!tile.window` type, or None if `t` is not one."""
    s = str(t)
    if not s.startswith("!tile.window<"):
        return None
    m = _WINDOW_RE.match(s)
    if not m or m.group(1).strip() != "i64":
        _fail(f"window type {s} must have an array<i64: ...> shape")
    nums = (m.group(2) or "").strip()
    shape = tuple(int(x) for x in nums.split(",")) if nums else ()
    if any(d <= 0 for d in shape):
        _fail(f"window type {s} has a non-positive size")
    return shape, ir.Type.parse(m.group(3).strip())


def _tensor(t):
    return t if isinstance(t, ir.RankedTensorType) else None


def _static_tensor(t, what):
    tt = _tensor(t)
    if tt is None:
        _fail(f"{what} must be a ranked tensor, got {t}")
    if not tt.has_static_shape:
        _fail(f"{what} must have a static shape, got {t}")
    return tuple(tt.shape), tt.element_type


def _is_scalar(t) -> bool:
    return isinstance(t, (ir.IntegerType, ir.FloatType, ir.IndexType))


def _is_elem(t) -> bool:
    """Element types of tiles and buffers: integers and floats."""
    return isinstance(t, (ir.IntegerType, ir.FloatType))


def _tile_type(shape, elem):
    """The type a value of this shape has: a ranked tensor, or the bare element for rank 0."""
    if not _is_elem(elem) and not isinstance(elem, ir.IndexType):
        _fail(f"element type {elem} is not an integer or float type")
    return ir.RankedTensorType.get(list(shape), elem) if shape else elem


def _int_attr(op, key):
    if key not in op.attributes:
        _fail(f"requires attribute '{key}'")
    try:
        attr = ir.IntegerAttr(op.attributes[key])
    except Exception:  # noqa: BLE001 - any non-integer attribute is a violation
        _fail(f"attribute '{key}' must be an integer, got {op.attributes[key]}")
    t = attr.type
    # reading a wider-than-64-bit IntegerAttr's value asserts inside the bindings (process abort)
    if not isinstance(t, ir.IndexType) and (not isinstance(t, ir.IntegerType) or t.width > 64):
        _fail(f"attribute '{key}' must be an integer of at most 64 bits, got {attr}")
    return attr.value


def _dense_array(op, key, kind=ir.DenseI64ArrayAttr, spelled="i64"):
    if key not in op.attributes:
        _fail(f"requires attribute '{key}'")
    try:
        a = op.attributes[key]
    except TypeError:  # the bindings cannot even represent it (e.g. array<bf16: ...>)
        a = None
    if not isinstance(a, kind):
        _fail(f"attribute '{key}' must be an array<{spelled}: ...>, got {a or 'another kind of array'}")
    return list(a)


def _i64_array(op, key):
    return _dense_array(op, key)


def _segments(op):
    """Operands of tile.load/store/mma by group (src, mask, other / dst, value, mask / a, b, acc);
    None for an absent optional operand."""
    try:
        seg = tb.segments(op)
    except ValueError as e:
        _fail(str(e).split(": ", 1)[-1])
    operands, out, i = list(op.operands), [], 0
    if sum(seg) != len(operands) or any(s not in (0, 1) for s in seg):
        _fail(f"operand groups {seg} do not match its {len(operands)} operands")
    for s in seg:
        out.append(operands[i] if s else None)
        i += s
    return out


def _shared(t, what):
    """Shape and element type of a shared buffer (static memref in the workgroup address space)."""
    if not isinstance(t, ir.MemRefType):
        _fail(f"{what} must be a !tile.window or a shared memref, got {t}")
    if not t.has_static_shape:
        _fail(f"{what} shared memref must have a static shape, got {t}")
    if str(t.memory_space) != _WORKGROUP:
        _fail(f"{what} memref must be in {_WORKGROUP} (a shared buffer), got {t}")
    if t.rank == 0 or any(d <= 0 for d in t.shape):
        _fail(f"{what} shared memref must have rank >= 1 and positive sizes, got {t}")
    return tuple(t.shape), t.element_type


def _from_view(value, what):
    """A window operand must come straight from tile.view (lowerings read the view's operands)."""
    owner = value.owner
    if not isinstance(owner, (ir.Operation, ir.OpView)) or _opname(owner) != "tile.view":
        _fail(f"{what} window must be defined by tile.view")


def _access(value, what):
    """(shape, elem) of a load source / store destination: a window or a shared buffer."""
    w = _window_info(value.type)
    if w is not None:
        _from_view(value, what)
        return w
    return _shared(value.type, what)


def _check_mask(mask, shape):
    if mask is None:
        return
    want = _tile_type(shape, ir.IntegerType.get_signless(1))
    if mask.type != want:
        _fail(f"mask must be {want} (i1 of the value's shape), got {mask.type}")


def _axis_op(op):
    axis = _int_attr(op, "axis")
    if not 0 <= axis <= 2:
        _fail(f"axis must be 0, 1 or 2, got {axis}")


def _view(op):
    base = op.operands[0].type
    offsets = list(op.operands)[1:]
    rank = ir.MemRefType(base).rank
    sizes, squeeze = _i64_array(op, "sizes"), _i64_array(op, "squeeze")
    if len(offsets) != rank:
        _fail(f"expects {rank} offsets (the base memref's rank), got {len(offsets)}")
    if len(sizes) != rank or len(squeeze) != rank:
        _fail(f"sizes ({len(sizes)}) and squeeze ({len(squeeze)}) must have one entry per base dim ({rank})")
    if any(s <= 0 for s in sizes):
        _fail(f"sizes must be positive, got {sizes}")
    if any(q not in (0, 1) for q in squeeze):
        _fail(f"squeeze entries must be 0 or 1, got {squeeze}")
    for d, (s, q) in enumerate(zip(sizes, squeeze)):
        if q and s != 1:
            _fail(f"squeezed dim {d} must have size 1, got {s}")
    w = _window_info(op.results[0].type)
    want = tuple(s for s, q in zip(sizes, squeeze) if not q)
    if w[0] != want:
        _fail(f"result window shape {list(w[0])} does not match the non-squeezed sizes {list(want)}")
    elem = ir.MemRefType(base).element_type
    if w[1] != elem:
        _fail(f"result element type {w[1]} does not match the base element type {elem}")
    if not _is_elem(elem):
        _fail(f"element type must be an integer or float type, got {elem}")
    for use in op.results[0].uses:
        user = _opname(use.owner)
        if (user, use.operand_number) not in _WINDOW_USES:
            _fail(f"result may only be used as the window of tile.load/tile.store/tile.cp_async, "
                  f"not by '{user}'")


def _load(op):
    src, mask, other = _segments(op)
    shape, elem = _access(src, "source")
    want = _tile_type(shape, elem)
    rt = op.results[0].type
    if rt != want:
        _fail(f"result type {rt} does not match the source: expected {want}")
    _check_mask(mask, shape)
    if other is not None and other.type not in (want, elem):
        _fail(f"'other' must be {want} or {elem}, got {other.type}")


def _store(op):
    dst, value, mask = _segments(op)
    shape, elem = _access(dst, "destination")
    want = _tile_type(shape, elem)
    if value.type != want:
        _fail(f"stored value {value.type} does not match the destination: expected {want}")
    _check_mask(mask, shape)


def _alloc_shared(op):
    _, elem = _shared(op.results[0].type, "result")
    if not _is_elem(elem):
        _fail(f"element type must be an integer or float type, got {elem}")


def _cp_async(op):
    dst, src = op.operands[0].type, op.operands[1]
    dshape, delem = _shared(dst, "destination")
    _from_view(src, "source")
    wshape, welem = _window_info(src.type)
    if dshape != wshape:
        _fail(f"destination shape {list(dshape)} does not match the source window shape {list(wshape)}")
    if delem != welem:
        _fail(f"destination element type {delem} does not match the source window's {welem}")


def _cp_wait_group(op):
    n = _int_attr(op, "pending")
    if n < 0:
        _fail(f"pending must be >= 0, got {n}")


def _mma(op):
    a, b, acc = _segments(op)
    (ash, ae), (bsh, be) = _static_tensor(a.type, "a"), _static_tensor(b.type, "b")
    if len(ash) != 2 or len(bsh) != 2:
        _fail(f"a and b must be 2-d tiles, got {a.type} and {b.type}")
    if ash[1] != bsh[0]:
        _fail(f"inner dims differ: a is {ash[0]}x{ash[1]}, b is {bsh[0]}x{bsh[1]}")
    if ae != be:
        _fail(f"a and b must have the same element type, got {ae} and {be}")
    if not isinstance(ae, ir.FloatType):
        _fail(f"a and b must be float tiles, got {ae}")
    rt = op.results[0].type
    want = ir.RankedTensorType.get([ash[0], bsh[1]], ir.F32Type.get())
    if rt != want:
        _fail(f"result must be {want}, got {rt}")
    if acc is not None and acc.type != want:
        _fail(f"accumulator must be {want} (the result type), got {acc.type}")


def _reduce(op):
    shape, elem = _static_tensor(op.operands[0].type, "operand")
    if not _is_elem(elem):
        _fail(f"operand element type must be an integer or float type, got {elem}")
    kind = op.attributes["kind"]
    if not isinstance(kind, ir.StringAttr) or kind.value not in _REDUCE_KINDS:
        _fail(f"kind must be one of {', '.join(_REDUCE_KINDS)}, got {kind}")
    axis = _int_attr(op, "axis")
    if not 0 <= axis < len(shape):
        _fail(f"axis {axis} is out of range for an operand of rank {len(shape)}")
    want = _tile_type(shape[:axis] + shape[axis + 1:], elem)
    if op.results[0].type != want:
        _fail(f"result must be {want}, got {op.results[0].type}")


def _broadcast(op):
    xt = op.operands[0].type
    if _tensor(xt) is not None:
        xs, xe = _static_tensor(xt, "operand")
    elif _is_scalar(xt):
        xs, xe = (), xt
    else:
        _fail(f"operand must be a tile or a scalar, got {xt}")
    rs, re_ = _static_tensor(op.results[0].type, "result")
    if xe != re_:
        _fail(f"element types differ: operand {xe}, result {re_}")
    lead = len(rs) - len(xs)
    if lead < 0 or any(x != 1 and x != r for x, r in zip(xs, rs[lead:])):
        _fail(f"cannot broadcast shape {list(xs)} to {list(rs)}")


def _convert_layout(op):
    if op.results[0].type != op.operands[0].type:
        _fail(f"result type {op.results[0].type} must be the operand's, {op.operands[0].type}")
    layout = op.attributes["layout"]
    if not isinstance(layout, ir.StringAttr) or layout.value != "blocked":
        _fail(f"layout must be \"blocked\" (the layout tiles have unless an mma produced them), got {layout}")


def _arange(op):
    start, end = _int_attr(op, "start"), _int_attr(op, "end")
    if end <= start:
        _fail(f"end ({end}) must be greater than start ({start})")
    rt = op.results[0].type
    tt = _tensor(rt)
    if tt is None or list(tt.shape) != [end - start] or tt.element_type != ir.IntegerType.get_signless(32):
        _fail(f"result must be tensor<{end - start}xi32>, got {rt}")


def _list_get(op):
    """A list of rank-r global tensors is a table memref<N x (1 + 2r) x i64>: per element its address,
    r sizes and r strides (elements); the result is a global tensor of rank r."""
    tt, rt = op.operands[0].type, op.results[0].type
    if not isinstance(tt, ir.MemRefType) or tt.rank != 2 or tt.element_type != ir.IntegerType.get_signless(64):
        _fail(f"the table must be a rank-2 memref of i64, got {tt}")
    if not isinstance(rt, ir.MemRefType) or rt.rank < 1 or rt.memory_space is not None:
        _fail(f"the result must be a global memref of rank >= 1, got {rt}")
    cols = tt.shape[1]
    if cols != ir.ShapedType.get_dynamic_size() and cols != 1 + 2 * rt.rank:
        _fail(f"a table of rank-{rt.rank} tensors has {1 + 2 * rt.rank} columns (address, sizes, strides), got {cols}")


_CHECKS = {
    "tile.program_id": _axis_op, "tile.num_programs": _axis_op, "tile.view": _view,
    "tile.load": _load, "tile.store": _store, "tile.alloc_shared": _alloc_shared,
    "tile.cp_async": _cp_async, "tile.cp_wait_group": _cp_wait_group, "tile.mma": _mma,
    "tile.reduce": _reduce, "tile.broadcast": _broadcast, "tile.arange": _arange,
    "tile.convert_layout": _convert_layout, "tile.list_get": _list_get,
}
from .verify_ts import TS_CHECKS  # noqa: E402 - it uses the helpers above
_CHECKS.update(TS_CHECKS)


def verify_tile(module_op) -> bool:
    """Check every tile op (and the attributes of every ts op) under `module_op`; emit an error per
    violation; True if all pass."""
    root = getattr(module_op, "operation", module_op)
    ops = []

    def collect(op):
        op = getattr(op, "operation", op)
        if op.name in _CHECKS:
            ops.append(op)
        return ir.WalkResult.ADVANCE

    with root.context:
        root.walk(collect)
        ok = True
        for op in ops:
            try:
                _CHECKS[op.name](op)
            except _Invalid as e:
                op.location.emit_error(f"'{op.name}' op {e}")
                ok = False
            except (IndexError, KeyError, ValueError, TypeError, ir.MLIRError) as e:  # IR that IRDL did not verify
                op.location.emit_error(f"'{op.name}' op is malformed ({type(e).__name__}: {e})")
                ok = False
        return ok
