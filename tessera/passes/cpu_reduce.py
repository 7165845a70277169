"""tessera-cpu-reduce: `linalg.reduce` over one dimension of a static tile buffer → vector code.

Why: `convert-linalg-to-loops` makes a reduction one scalar chain (each add waits for the previous one),
which LLVM may not reorder for floats: a 1024-wide row max or sum costs 1024 dependent operations.
What it does, for a reduction whose body is one combining op (add, mul, max, min for floats; add, mul,
signed max/min, and, or, xor for integers) on static, row-major memrefs of at least 8-bit elements:
  * over the innermost dimension: per output element, ACC vectors of V lanes accumulate the row in
    strides of ACC * V, are combined pairwise, reduced across lanes (`vector.reduction`), and combined
    with the output's initial value;
  * over another dimension: per output row, V output lanes at a time are loaded, combined with each
    reduced row in order, and stored.
The order of a float sum depends only on the tile's shape (never on the data or the thread count):
results are deterministic but may differ from the scalar chain in the last bits. A reduction whose
innermost extent no vector width (of at least 4 lanes) divides is left to `convert-linalg-to-loops`.
Assumes: bufferized IR; runs before `convert-linalg-to-loops`.
"""
from __future__ import annotations

from mlir import ir
from mlir.dialects import arith, memref, scf, vector

from .cpu_matmul import host_vector_shape
from .options import Option

name = "tessera-cpu-reduce"
OPTIONS = {"width": Option(int, "32-bit lanes per vector register (0: the host's)", lo=0, hi=64)}
ACC = 4   # independent accumulators: enough to cover an FMA-unit's latency

# combining op → vector.reduction kind
_KINDS = {"arith.addf": "add", "arith.mulf": "mul", "arith.maximumf": "maximumf", "arith.minimumf": "minimumf",
          "arith.maxnumf": "maxnumf", "arith.minnumf": "minnumf", "arith.addi": "add", "arith.muli": "mul",
          "arith.maxsi": "maxsi", "arith.minsi": "minsi", "arith.andi": "and", "arith.ori": "or",
          "arith.xori": "xor"}


def _idx(v):
    return arith.ConstantOp(ir.IndexType.get(), v).result


def _rowmajor_static(t):
    if not isinstance(t, ir.MemRefType) or any(ir.ShapedType.is_dynamic_size(d) for d in t.shape):
        return False
    et = t.element_type
    if getattr(et, "width", 0) < 8 or "f8" in str(et) or not (isinstance(et, ir.FloatType)
                                                               or isinstance(et, ir.IntegerType)):
        return False
    rank = len(t.shape)
    dims = ", ".join(f"d{i}" for i in range(rank))
    return not rank or str(t.layout) == f"affine_map<({dims}) -> ({dims})>"


def _combiner(op):
    body = op.regions[0].blocks[0]
    ops = list(body.operations)
    if len(ops) != 2 or ops[0].name not in _KINDS:
        return None
    args = list(body.arguments)
    comb = ops[0]
    if list(comb.operands) not in (args, args[::-1]) or ops[1].operands[0] != comb.results[0]:
        return None
    return comb.name


def _apply(kind, a, b):
    return ir.Operation.create(kind, results=[a.type], operands=[a, b]).results[0]


def _loops(extents, body):
    """scf.for nest over static extents (innermost last); body(ivs)."""
    ivs = []

    def rec(k):
        if k == len(extents):
            body(list(ivs))
            return
        lo = scf.ForOp(_idx(0), _idx(extents[k]), _idx(1))
        with ir.InsertionPoint(lo.body):
            ivs.append(lo.induction_variable)
            rec(k + 1)
            ivs.pop()
            scf.YieldOp([])
    rec(0)


def _lanes(n, width):
    v = width
    while v >= 4 and n % v:
        v //= 2
    return v if v >= 4 else None


def _lower(op, width):
    x, init = op.operands[0], op.operands[1]
    if not (_rowmajor_static(x.type) and _rowmajor_static(init.type)):
        return False
    dims = list(ir.DenseI64ArrayAttr(op.attributes["dimensions"]))
    kind = _combiner(op)
    if len(dims) != 1 or kind is None:
        return False
    shape = list(ir.MemRefType(x.type).shape)
    et = ir.MemRefType(x.type).element_type
    d, rank = dims[0], len(shape)
    lanes = _lanes(shape[-1], width * 32 // max(32, et.width))
    if lanes is None:
        return False
    vt = ir.VectorType.get([lanes], et)
    with ir.InsertionPoint(op), op.location:
        if d == rank - 1:
            n = shape[-1]
            acc_n = next(a for a in (ACC, 2, 1) if n % (a * lanes) == 0)

            def row(ivs):
                first = [vector.LoadOp(vt, x, ivs + [_idx(a * lanes)]).result for a in range(acc_n)]
                step = acc_n * lanes
                loop = scf.ForOp(_idx(step), _idx(n), _idx(step), first)
                with ir.InsertionPoint(loop.body):
                    c = loop.induction_variable
                    new = []
                    for a, acc in enumerate(loop.inner_iter_args):
                        col = arith.AddIOp(c, _idx(a * lanes)).result if a else c
                        new.append(_apply(kind, acc, vector.LoadOp(vt, x, ivs + [col]).result))
                    scf.YieldOp(new)
                accs = list(loop.results)
                while len(accs) > 1:
                    accs = [_apply(kind, accs[i], accs[i + 1]) for i in range(0, len(accs), 2)]
                r = vector.ReductionOp(et, ir.Attribute.parse(f"#vector.kind<{_KINDS[kind]}>"), accs[0]).result
                memref.StoreOp(_apply(kind, memref.LoadOp(init, ivs).result, r), init, ivs)
            _loops(shape[:-1], row)
        else:
            outer = shape[:d] + shape[d + 1:-1]

            def chunk(ivs):
                out_idx = ivs[:-1] + [arith.MulIOp(ivs[-1], _idx(lanes)).result]
                acc = vector.LoadOp(vt, init, out_idx).result
                loop = scf.ForOp(_idx(0), _idx(shape[d]), _idx(1), [acc])
                with ir.InsertionPoint(loop.body):
                    x_idx = out_idx[:d] + [loop.induction_variable] + out_idx[d:]
                    scf.YieldOp([_apply(kind, loop.inner_iter_args[0], vector.LoadOp(vt, x, x_idx).result)])
                vector.StoreOp(loop.results[0], init, out_idx)
            _loops(outer + [shape[-1] // lanes], chunk)
    op.erase()
    return True


def run(module_op, width=0):
    width = width or host_vector_shape()[0]
    found = []

    def visit(op):
        if op.name == "linalg.reduce" and len(op.operands) == 2:
            found.append(op)
        return ir.WalkResult.ADVANCE
    module_op.walk(visit)
    for op in found:
        _lower(op, width)
