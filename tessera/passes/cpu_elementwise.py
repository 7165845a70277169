"""Elementwise tile ops as few `linalg.generic`s (part of tessera-lower-tile-to-cpu).

Each arith/math op on tensors used to become its own linalg.generic, hence its own buffer and loop nest,
and the JIT's LLVM (an assertion-enabled build) verifies the whole function after vectorising each loop:
compile time grew with loops × function size, i.e. quadratically in kernel length (issue 16). Here the
elementwise ops of a block that share a shape are grouped into one generic per group; values used
outside a group become its results. `linalg-fuse-elementwise-ops` cannot do this: it fuses a producer
only into its single user.

A group is kept legal by positions alone, in one pass over the block: its generic must come after every
value it reads from outside (`low`: the latest definition) and before every op outside it that reads one
of its values (`high`: the first such op). An op that would make low reach high starts a new group.
Only pure ops move, so the order of loads and stores is untouched; each op is looked at a bounded number
of times.
"""
from __future__ import annotations

import math

from mlir import ir
from mlir.dialects import arith, linalg, tensor


def _shape(t):
    if not isinstance(t, ir.RankedTensorType):
        return None
    rt = ir.RankedTensorType(t)
    return tuple(rt.shape) if rt.has_static_shape else None


def _candidate(op):
    """The static shape of an elementwise arith/math op on tensors, else None."""
    if op.name.split(".")[0] not in ("arith", "math") or len(op.results) != 1 or not len(op.operands):
        return None
    shape = _shape(op.results[0].type)
    if shape is None or any(_shape(v.type) != shape for v in op.operands):
        return None
    return shape


class _Group:
    def __init__(self, shape):
        self.shape, self.members, self.low, self.high = shape, [], -1.0, math.inf


class _Block:
    def __init__(self, block):
        self.block = block
        self.pos = {}            # op → position in the block (a new generic sits half-way before its anchor)
        self.owner = {}          # member result → its open group
        self.open = {}           # shape → open group

    def _def_pos(self, v):
        owner = v.owner
        return -1.0 if isinstance(owner, ir.Block) else self.pos.get(owner, -1.0)

    def _inputs_pos(self, v):
        """Where a group operand's data comes from: a splat reads only its scalar."""
        owner = v.owner
        if not isinstance(owner, ir.Block) and owner.name == "tensor.splat":
            return max(self._def_pos(v), self._def_pos(owner.operands[0]))
        return self._def_pos(v)

    def run(self):
        ops = self.ops = [op.operation for op in self.block.operations]
        for i, op in enumerate(ops):
            self.pos[op.operation] = float(i)
        for i, op in enumerate(ops):
            shape = _candidate(op)
            if shape is not None and self._join(op, shape, i):
                continue
            self._note_uses(op, i)
            if shape is not None:
                g = _Group(shape)
                self._add(g, op)
                self.open[shape] = g
        for g in list(self.open.values()):
            self._close(g, len(ops) - 1)

    def _join(self, op, shape, i):
        g = self.open.get(shape)
        if g is None:
            return False
        low = g.low
        for v in op.operands:
            if self.owner.get(v) is not g:
                low = max(low, self._inputs_pos(v))
        if low >= g.high:       # it would read something made after a reader of the group: a new group
            g.high = min(g.high, i)
            del self.open[shape]
            self._close(g, i)
            return False
        g.low = low
        self._add(g, op)
        return True

    def _add(self, g, op):
        g.members.append(op)
        g.low = max([g.low] + [self._inputs_pos(v) for v in op.operands if self.owner.get(v) is not g])
        self.owner[op.results[0]] = g

    def _note_uses(self, op, i):
        """`op` (and what it nests) reads group values from outside the group: the group must come first."""
        def visit(o):
            for v in o.operands:
                g = self.owner.get(v)
                if g is not None and i < g.high:
                    g.high = i
            return ir.WalkResult.ADVANCE
        op.walk(visit)

    def _close(self, g, i):
        """Materialise `g` before the op at `i` or before its first outside reader, if earlier (both are
        ops of the block that are still there: readers outside the group are not moved)."""
        for m in g.members:
            self.owner.pop(m.results[0], None)
        if len(g.members) < 2:
            return
        anchor = int(min(g.high, i))
        gen = _fuse(g, self.ops[anchor])
        if gen is not None:
            self.pos[gen] = anchor - 0.5


def _fuse(g, anchor):
    """One linalg.generic computing every member of `g`, inserted before `anchor`; members are replaced."""
    members = set(g.members)
    inputs, index = [], {}
    for m in g.members:
        for v in m.operands:
            owner = v.owner
            if v in index or (not isinstance(owner, ir.Block) and owner in members):
                continue
            if not isinstance(owner, ir.Block) and owner.name in ("tensor.splat", "arith.constant") and \
                    _splat_scalar(owner, dry=True):
                index[v] = None          # a splat: its scalar is used directly
                continue
            index[v] = len(inputs)
            inputs.append(v)
    outputs = [m for m in g.members if any(u.owner not in members for u in m.results[0].uses)]
    if not outputs:
        return None
    rank = len(g.shape)
    ident = ir.AffineMapAttr.get(ir.AffineMap.get_identity(rank))
    with ir.InsertionPoint(anchor), anchor.location:
        inits = _inits(outputs, index, g.shape)
        gen = linalg.GenericOp([m.results[0].type for m in outputs], inputs, inits,
                               ir.ArrayAttr.get([ident] * (len(inputs) + len(outputs))),
                               ir.ArrayAttr.get([ir.Attribute.parse("#linalg.iterator_type<parallel>")] * rank))
        elems = [ir.RankedTensorType(v.type).element_type for v in inputs + inits]
        body = gen.regions[0].blocks.append(*elems)
        scalar = {}
        with ir.InsertionPoint(body):
            for m in g.members:
                args = []
                for v in m.operands:
                    if v in scalar:
                        args.append(scalar[v])
                    elif index[v] is None:
                        args.append(_splat_scalar(v.owner))
                    else:
                        args.append(body.arguments[index[v]])
                with m.location:
                    new = ir.Operation.create(m.name, results=[ir.RankedTensorType(m.results[0].type).element_type],
                                              operands=args, attributes={k: m.attributes[k] for k in m.attributes})
                scalar[m.results[0]] = new.results[0]
            linalg.YieldOp([scalar[m.results[0]] for m in outputs])
    for k, m in enumerate(outputs):
        m.results[0].replace_all_uses_with(gen.results[k])
    for m in reversed(g.members):
        m.erase()
    return gen.operation


def _inits(outputs, index, shape):
    """Each result's destination: an operand of its op read from outside, as convert-elementwise-to-linalg
    chooses, so that bufferization can update in place (a loop-carried tile must: scf.for yields a buffer
    equivalent to its iteration argument), else a new tensor."""
    taken, inits = set(), []
    for m in outputs:
        t = m.results[0].type
        dest = next((v for v in m.operands if index.get(v) is not None and v.type == t and v not in taken), None)
        if dest is None:
            dest = tensor.EmptyOp(list(shape), ir.RankedTensorType(t).element_type).result
        taken.add(dest)
        inits.append(dest)
    return inits


def _splat_scalar(op, dry=False):
    """The scalar every element of a splat holds (a value, or a new constant), or None."""
    if op.name == "tensor.splat":
        return True if dry else op.operands[0]
    attr = op.attributes["value"]
    if not isinstance(attr, ir.DenseElementsAttr) or not ir.DenseElementsAttr(attr).is_splat:
        return None
    if dry:
        return True
    return arith.ConstantOp(ir.DenseElementsAttr(attr).get_splat_value().type,
                            ir.DenseElementsAttr(attr).get_splat_value()).result


def group_elementwise(func_op):
    """Group the elementwise ops of every block of `func_op` (see the module docstring)."""
    blocks = []

    def collect(op):
        for region in op.regions:
            for block in region.blocks:
                blocks.append(block)
        return ir.WalkResult.ADVANCE
    func_op.walk(collect)
    for b in blocks:
        _Block(b).run()
