"""tessera-narrow-index: 32-bit per-thread index arithmetic in kernels specialised on small tensors.

Assumes a `gpu.func` carrying `tessera.index32`: the launch's tensors are small (every in-bounds element
offset, size and stride within 2^30 in magnitude) and so are its integer scalar arguments; the launchers
check it (`runtime.cuda.check_specialisation`). Other functions are left alone.

What becomes 32-bit: every index value that differs between threads, i.e. vectors of index (the
fragments' lanes, coordinates and offsets), `gpu.thread_id` / `gpu.lane_id`, and what arith and vector
ops compute from them, scalars extracted from such vectors included. CTA-uniform index values they
combine with are brought to i32 once, where they are defined: constants directly; tensor metadata,
scalar arguments, block and grid ids and dims, and induction variables of loops with such bounds by
truncation (they fit); anything else (a window offset like `program_id * BLOCK`) saturated to ±2^30,
so an offset beyond the 32-bit range stays out of bounds instead of wrapping into them. A lane's
coordinate is then at most 2^30 + a tile size, and a coordinate in bounds gives an element offset below
2^30: both exact in i32. Offsets of lanes outside the tensor may wrap; they are never accessed (their
masks come from the coordinates). Uses that need `index` (memory accesses, loop bounds, region
results) get a sign extension, so an access costs one 32×32→64-bit multiply-add into its base address,
as in Triton. Kernels whose integer index tiles carry data beyond ±2^30 must not be specialised (none
of tessera's are; the specialisation key says `index32`).
"""
from __future__ import annotations

import numpy as np
from mlir import ir
from mlir.dialects import arith

name = "tessera-narrow-index"

LIMIT = 1 << 30
_MARK = "tessera.narrow"

# ops computed per element on index values: narrowed in place when a thread-dependent value flows in
_NARROWABLE = {f"arith.{n}" for n in ("addi", "subi", "muli", "divui", "divsi", "remui", "remsi", "ceildivsi",
                                      "floordivsi", "minui", "maxui", "minsi", "maxsi", "andi", "ori", "xori",
                                      "shli", "shrui", "shrsi", "select", "cmpi", "constant")} | \
    {f"vector.{n}" for n in ("broadcast", "splat", "extract", "insert", "shuffle", "extract_strided_slice",
                             "insert_strided_slice", "from_elements")}
_THREAD = {"gpu.thread_id", "gpu.lane_id"}

# narrowed ops that pass offsets on (a wrapped input wraps their result, which decides nothing)
_LINEAR = {"arith.addi", "arith.subi", "arith.muli", "arith.select", "arith.constant"} | \
    {f"vector.{n}" for n in ("broadcast", "splat", "extract", "insert", "shuffle", "extract_strided_slice",
                             "insert_strided_slice", "from_elements")}
# users that take a (sign-extended) offset only to address memory
_ADDRESS_USERS = {"memref.load", "memref.store", "vector.load", "vector.store", "vector.gather", "vector.scatter",
                  "vector.maskedload", "vector.maskedstore", "nvgpu.device_async_copy", "nvgpu.ldmatrix"}
INF = float("inf")
UNKNOWN = (-INF, INF)
I32 = (-(1 << 31), (1 << 31) - 1)


def _mul(a, b):
    out = []
    for x in a:
        for y in b:
            out.append(0 if x == 0 or y == 0 else x * y)
    return (min(out), max(out))


def _divu(a, b):
    if a[0] < 0 or b[0] <= 0:
        return UNKNOWN
    return (a[0] // b[1] if b[1] != INF else 0, a[1] // b[0] if a[1] != INF else INF)


def _remu(a, b):
    if b[0] <= 0:
        return UNKNOWN
    return (0, min(b[1] - 1, a[1]) if a[0] >= 0 else b[1] - 1)


def _minu(a, b):
    if a[0] >= 0 and b[0] >= 0:
        return (min(a[0], b[0]), min(a[1], b[1]))
    for x, y in ((a, b), (b, a)):
        if x[0] >= 0:       # the other, if negative, is huge unsigned
            return (min(x[0], max(y[0], 0)), x[1])
    return UNKNOWN


def _maxu(a, b):
    return (max(a[0], b[0]), max(a[1], b[1])) if a[0] >= 0 and b[0] >= 0 else UNKNOWN


def _union(rs):
    return (min(r[0] for r in rs), max(r[1] for r in rs))


# the range of a result from its operands' ranges
_RANGE = {
    "arith.addi": lambda r: (r[0][0] + r[1][0], r[0][1] + r[1][1]),
    "arith.subi": lambda r: (r[0][0] - r[1][1], r[0][1] - r[1][0]),
    "arith.muli": lambda r: _mul(r[0], r[1]),
    "arith.divui": lambda r: _divu(r[0], r[1]),
    "arith.divsi": lambda r: _divu(r[0], r[1]),
    "arith.remui": lambda r: _remu(r[0], r[1]),
    "arith.remsi": lambda r: _remu(r[0], r[1]) if r[0][0] >= 0 else UNKNOWN,
    "arith.minui": lambda r: _minu(r[0], r[1]),
    "arith.maxui": lambda r: _maxu(r[0], r[1]),
    "arith.minsi": lambda r: (min(r[0][0], r[1][0]), min(r[0][1], r[1][1])),
    "arith.maxsi": lambda r: (max(r[0][0], r[1][0]), max(r[0][1], r[1][1])),
    "arith.select": _union,
    **{f"vector.{n}": _union for n in ("broadcast", "splat", "extract", "insert", "shuffle", "extract_strided_slice",
                                        "insert_strided_slice", "from_elements")},
}


def _indexes_shared(op, number) -> bool:
    """Operand `number` of `op` is an index into a memref in shared memory."""
    pending, space = 0, None
    for i, x in enumerate(op.operands):
        if isinstance(x.type, ir.MemRefType):
            pending, space = ir.MemRefType(x.type).rank, ir.MemRefType(x.type).memory_space
            continue
        if i == number:
            return pending > 0 and space is not None and "workgroup" in str(space)
        pending = max(pending - 1, 0)
    return False


def _const(v):
    """The value of an index constant, or None."""
    if isinstance(v.owner, ir.Block) or _op(v.owner).name != "arith.constant" or not isinstance(v.type, ir.IndexType):
        return None
    return ir.IntegerAttr(_op(v.owner).attributes["value"]).value


def _intlike(t) -> bool:
    e = ir.VectorType(t).element_type if isinstance(t, ir.VectorType) else t
    return isinstance(e, ir.IndexType) or (isinstance(e, ir.IntegerType) and ir.IntegerType(e).width > 1)


def _ints(attr):
    d = ir.DenseIntElementsAttr(attr)
    if d.is_splat:
        return [ir.IntegerAttr(d.get_splat_value()).value]
    return [d[i] for i in range(len(d))]


def _is_index(t) -> bool:
    if isinstance(t, ir.IndexType):
        return True
    return isinstance(t, ir.VectorType) and isinstance(ir.VectorType(t).element_type, ir.IndexType)


def _op(x):
    return x.operation if hasattr(x, "operation") else x


def _after(v):
    """The insertion point right after the definition of `v` (a block's start for an argument)."""
    owner = v.owner
    if isinstance(owner, ir.Block):
        return ir.InsertionPoint.at_block_begin(owner)
    return ir.InsertionPoint.after(_op(owner))


def _clamp(x):
    return max(-LIMIT, min(LIMIT, int(x)))


class _Narrower:
    def __init__(self, func):
        self.func = func
        self.i32 = ir.IntegerType.get_signless(32)
        self.hot = set()        # thread-dependent index values (narrowed in place, or a thread id / loop index)
        self.forms = {}         # index value -> its i32 form
        self.former = {}        # value narrowed in place -> its former type
        self._ranges = {}

    def _type(self, t):
        return self.i32 if isinstance(t, ir.IndexType) else ir.VectorType.get(ir.VectorType(t).shape, self.i32)

    def _fits(self, v) -> bool:
        """`v` (uniform) fits in i32 under the specialisation: truncating it is exact."""
        lo, hi = self._range(v)
        return lo >= I32[0] and hi <= I32[1]

    def _range(self, v, depth=64):
        """(lo, hi): the values `v` (every element of a vector) can take under the specialisation; ±inf
        where unknown."""
        if v in self._ranges:
            return self._ranges[v]
        r = self._range_of(v, depth) if depth else UNKNOWN
        if r != UNKNOWN or depth == 64:
            self._ranges[v] = r
        return r

    def _range_of(self, v, depth):
        owner = v.owner
        if isinstance(owner, ir.Block):
            parent = owner.owner
            if parent is not None and parent.name == "gpu.func":
                return (-LIMIT, LIMIT)                   # a scalar argument
            if parent is not None and parent.name == "scf.for":
                if v == owner.arguments[0]:
                    (l1, h1), (l2, h2) = (self._range(x, depth - 1) for x in list(parent.operands)[:2])
                    return (min(l1, l2), max(h1, h2))
                return self._counter_range(parent, owner, v, depth)
            return UNKNOWN
        op = _op(owner)
        name = op.name
        if name in _THREAD:
            return (0, 1023)
        if name in ("gpu.block_id", "gpu.grid_dim", "gpu.block_dim"):
            return (0, I32[1])
        if name == "memref.dim":
            return (0, LIMIT)
        if name == "memref.extract_strided_metadata":
            return (0, LIMIT) if v.result_number <= (len(op.results) - 2) // 2 + 1 else (-LIMIT, LIMIT)
        if name == "arith.constant":
            attr = op.attributes["value"]
            if not _intlike(v.type):
                return UNKNOWN
            vals = _ints(attr) if isinstance(v.type, ir.VectorType) else [ir.IntegerAttr(attr).value]
            return (min(vals), max(vals))
        ins = [x for x in op.operands if _intlike(x.type)]
        if name == "arith.index_cast":
            r = self._range(ins[0], depth - 1)
            if r == UNKNOWN and isinstance(ins[0].type, ir.IntegerType) and ir.IntegerType(ins[0].type).width <= 32:
                return I32
            return r
        if name == "arith.select":
            ins = list(op.operands)[1:]
        if name not in _RANGE:
            return UNKNOWN
        return _RANGE[name]([self._range(x, depth - 1) for x in ins])

    def _counter_range(self, loop, body, arg, depth):
        """A loop-carried counter that wraps (`up = arg + k; next = up == n ? c : up`, a pipeline's slot
        index): between its start, n and c."""
        i = list(body.arguments).index(arg) - 1
        init = list(loop.operands)[3 + i]
        y = _op(list(body.operations)[-1]).operands[i]
        sel = y.owner if not isinstance(y.owner, ir.Block) else None
        if sel is None or _op(sel).name != "arith.select":
            return UNKNOWN
        cond, a, b = list(_op(sel).operands)
        consts = [x for x in (a, b) if _const(x) is not None]
        ups = [x for x in (a, b) if _const(x) is None]
        if len(consts) != 1 or len(ups) != 1 or isinstance(ups[0].owner, ir.Block) or isinstance(cond.owner, ir.Block):
            return UNKNOWN
        up, cmp = _op(ups[0].owner), _op(cond.owner)
        if up.name != "arith.addi" or arg not in list(up.operands) or cmp.name != "arith.cmpi" \
                or ir.IntegerAttr(cmp.attributes["predicate"]).value != 0 or ups[0] not in list(cmp.operands):
            return UNKNOWN
        steps = [_const(x) for x in up.operands if x != arg]
        limits = [_const(x) for x in cmp.operands if x != ups[0]]
        lo, hi = self._range(init, depth - 1)
        if None in steps + limits or steps[0] <= 0:
            return UNKNOWN
        reset = _const(consts[0])
        return (min(lo, reset), max(hi, limits[0], reset))

    def form(self, v):
        """The i32 form of an index value: itself when narrowed in place, else made once after its definition."""
        if v in self.former:
            return v
        if v in self.forms:
            return self.forms[v]
        owner = v.owner
        loc = self.func.location if isinstance(owner, ir.Block) else owner.location
        t = self._type(v.type)
        if not isinstance(owner, ir.Block) and _op(owner).name == "arith.constant":
            with ir.InsertionPoint(_op(owner)), loc:
                out = arith.ConstantOp(t, _i32_attr(_op(owner).attributes["value"], t)).result
        else:
            with _after(v), loc:
                if isinstance(v.type, ir.IndexType) and not self._fits(v) and self._decides(v):
                    out = self._saturated(v, t)
                else:
                    out = arith.IndexCastOp(t, v).result
        self.forms[v] = out
        return out

    def _saturated(self, v, t):
        """`v` clamped to ±2^30, as i32. A block offset `a * c` (a fitting and non-negative, c a positive
        constant: `program_id * BLOCK`) clamps `a` instead, in 32 bits: min(a, ceil(2^30 / c)) * c, which is
        `v` below 2^30 and at least 2^30 (out of bounds) above."""
        op = None if isinstance(v.owner, ir.Block) else _op(v.owner)
        if op is not None and op.name == "arith.muli":
            for a, c in (tuple(op.operands), tuple(op.operands)[::-1]):
                k = _const(c)
                if k is not None and 0 < k < LIMIT and self._fits(a) and self._range(a)[0] >= 0:
                    cap = -(-LIMIT // k)
                    a32 = arith.MinUIOp(arith.IndexCastOp(t, a).result, arith.ConstantOp(t, cap).result).result
                    return arith.MulIOp(a32, arith.ConstantOp(t, k).result,
                                        overflowFlags=ir.Attribute.parse("#arith.overflow<nsw>")).result
        lo, hi = arith.ConstantOp(v.type, -LIMIT).result, arith.ConstantOp(v.type, LIMIT).result
        return arith.IndexCastOp(t, arith.MinSIOp(arith.MaxSIOp(v, lo).result, hi).result).result

    def _wants(self, op) -> bool:
        if op.name not in _NARROWABLE:
            return False
        results = [r for r in op.results if _is_index(r.type)]
        if op.name == "arith.constant":
            return bool(results) and isinstance(results[0].type, ir.VectorType)
        if not results and op.name != "arith.cmpi":
            return False
        if op.name == "arith.cmpi" and all(self._fits(x) for x in op.operands):
            return True       # a uniform comparison whose operands fit: one 32-bit compare instead of two
        if any(isinstance(r.type, ir.VectorType) for r in results):
            return True
        return any(x in self.hot for x in op.operands)

    def rewrite(self, op):
        if op.name == "arith.constant":
            r = op.results[0]
            t = self._type(r.type)
            op.attributes["value"] = _i32_attr(op.attributes["value"], t)
            self._retype(r, t)
            return
        for i, x in enumerate(list(op.operands)):
            if _is_index(x.type):
                op.operands[i] = self.form(x)
        for r in op.results:
            if _is_index(r.type):
                self._retype(r, self._type(r.type))
        if op.name in ("arith.addi", "arith.subi", "arith.muli"):
            # no signed wrap, so LLVM may move the sign extension inward (a uniform part of an offset then
            # joins the base address once): when the range fits, or when the value only addresses memory (an
            # access runs only for a lane inside the tensor, whose offset and its partial sums fit)
            lo, hi = self._range(op.results[0])
            if lo >= I32[0] and hi <= I32[1] or not self._decides(op.results[0]):
                op.attributes["overflowFlags"] = ir.Attribute.parse("#arith.overflow<nsw>")

    def _retype(self, r, t):
        self.former[r] = r.type
        r.set_type(t)
        self.hot.add(r)

    def run(self):
        ops = []

        def collect(op):
            ops.append(_op(op))
            return ir.WalkResult.ADVANCE
        self.func.walk(collect, ir.WalkOrder.PRE_ORDER)
        plan, pointers = [], set()
        for op in ops:
            if op.name == "memref.extract_aligned_pointer_as_index" or any(x in pointers for x in op.operands):
                pointers.update(op.results)   # an address: stays 64-bit (its thread-dependent parts sign-extend)
                continue
            if op.name in _THREAD:
                self.hot.add(op.results[0])
            elif op.name == "scf.for":
                iv = op.regions[0].blocks[0].arguments[0]
                if op.operands[0] in self.hot and self._fits(op.operands[1]):
                    self.hot.add(iv)        # a loop over a thread's share (`for q in range(tid, n, T)`)
            elif self._wants(op):
                plan.append(op)
                op.attributes[_MARK] = ir.UnitAttr.get()   # Python objects and hashes of ops are not stable
                self.hot.update(r for r in op.results if _is_index(r.type))
        plan = self._keep_shared_wide(plan)
        self._ranges = {}   # ranges memoised while planning saw the ops before their operands were narrowed
        for op in plan:
            self.rewrite(op)
        self._extend_uses()
        for op in plan:
            del op.attributes[_MARK]

    def _keep_shared_wide(self, plan):
        """Drop from the plan the ops whose results only index shared memory (through other such ops):
        64-bit, LLVM folds their constant parts into the accesses' immediate offsets (through a sign
        extension it cannot), and shared offsets are small either way."""
        wide = _MARK + ".wide"
        for op in reversed(plan):
            results = [r for r in op.results if _is_index(r.type)]
            if results and all(wide in _op(u.owner).attributes or _indexes_shared(_op(u.owner), u.operand_number)
                               for r in results for u in r.uses):
                op.attributes[wide] = ir.UnitAttr.get()
        kept = []
        for op in plan:
            if wide in op.attributes:
                del op.attributes[wide]
                del op.attributes[_MARK]
                self.hot.difference_update(op.results)
            else:
                kept.append(op)
        return kept

    def _decides(self, v) -> bool:
        """Whether the uniform value `v` reaches, through the ops to narrow, anything but the offset of a
        memory access (a comparison, a division, a loop bound...). Only then must it saturate rather than
        wrap: a wrapped offset is only ever that of a lane outside the tensor, which is not accessed."""
        seen, todo = [], [v]
        while todo:
            x = todo.pop()
            for use in list(x.uses):
                user = _op(use.owner)
                if _MARK not in user.attributes:
                    stored = use.operand_number == (len(user.operands) - 1 if user.name == "vector.scatter" else 0)
                    if user.name in _ADDRESS_USERS and not (stored and "store" in user.name or "scatter" in user.name
                                                            and stored):
                        continue
                    return True
                if user.name not in _LINEAR or (user.name == "arith.select" and use.operand_number == 0):
                    return True
                if not any(user == u for u in seen):
                    seen.append(user)
                    todo.extend(user.results)
        return False

    def _extend_uses(self):
        """Users that need index get the narrowed value sign-extended back (one cast per value)."""
        for r, t in self.former.items():
            users = [(_op(u.owner), u.operand_number) for u in list(r.uses) if _MARK not in _op(u.owner).attributes]
            if not users:
                continue
            with _after(r), r.owner.location:
                back = arith.IndexCastOp(t, r).result
            for user, i in users:
                user.operands[i] = back


def _i32_attr(attr, t):
    """An index constant's value (scalar or dense) as i32, clamped to ±2^30."""
    if isinstance(t, ir.IntegerType):
        return ir.IntegerAttr.get(t, _clamp(ir.IntegerAttr(attr).value))
    d = ir.DenseIntElementsAttr(attr)
    shape = ir.VectorType(t).shape
    if d.is_splat:
        one = _clamp(ir.IntegerAttr(d.get_splat_value()).value)
        return ir.DenseElementsAttr.get_splat(t, ir.IntegerAttr.get(ir.IntegerType.get_signless(32), one))
    vals = np.array([_clamp(d[i]) for i in range(len(d))], dtype=np.int32).reshape(shape)
    return ir.DenseElementsAttr.get(vals, type=t)


def run(module_op):
    def visit(op):
        if op.name == "gpu.func" and "tessera.index32" in op.attributes:
            _Narrower(op).run()
        return ir.WalkResult.ADVANCE
    module_op.walk(visit)
