"""tessera-cpu-matmul: `linalg.matmul` on f32 tile buffers → a register-tiled vector micro-kernel.

What it does: every `linalg.matmul` whose operands are static, row-major (identity layout) f32 memrefs
becomes loops over MR x NR blocks of C. A block's MR * NR / V accumulators (`vector<V x f32>`) stay in
registers across the whole K loop: per k, NR / V vector loads of B's row, MR scalar loads of A broadcast,
MR * NR / V `vector.fma`. MR and NR are chosen per shape from the host's SIMD width and register count
(`micro_kernel_shape`); every C element still sums its products in ascending k, so results differ from
the scalar loops only by the rounding of the fused multiply-add.
Assumes: bufferized IR (runs after the deallocation passes, before `convert-linalg-to-loops`, which
lowers what this pass leaves: integer, f64, dynamic or strided matmuls and shapes without a vector
width dividing N). tile.mma's bf16/f16 operands are converted to f32 once per tile by
tessera-lower-tile-to-cpu, so they arrive here as f32.
"""
from __future__ import annotations

from mlir import ir
from mlir.dialects import arith, memref, scf, vector

from .options import Option

name = "tessera-cpu-matmul"
OPTIONS = {"width": Option(int, "f32 lanes per vector register (0: the host's)", lo=0, hi=64),
           "registers": Option(int, "vector registers (0: the host's)", lo=0, hi=256)}


def host_vector_shape() -> tuple[int, int]:
    """(f32 lanes per SIMD register, number of SIMD registers) of this machine's CPU."""
    from ..runtime.cpu_object import host_isa
    isa = set(host_isa())
    if "avx512f" in isa:
        return 16, 32
    if "avx" in isa:
        return 8, 16
    if "asimd" in isa:
        return 4, 32
    return 4, 16


def micro_kernel_shape(m: int, n: int, width: int, registers: int):
    """(MR, V, NV): MR rows of C by NV vectors of V lanes per block, or None when no vector width
    (at least 4 lanes) divides N. Prefers two vectors across (one B load feeds more FMAs), then the
    most rows whose accumulators, NV B vectors and one broadcast still fit in the registers."""
    v = width
    while v >= 4 and n % v:
        v //= 2
    if v < 4:
        return None
    nv = 2 if n % (2 * v) == 0 else 1
    for mr in (8, 6, 4, 3, 2, 1):
        if m % mr == 0 and mr * nv + nv + 1 <= registers:
            return mr, v, nv
    return None


def _static_rowmajor_f32(t) -> bool:
    if not isinstance(t, ir.MemRefType) or not isinstance(t.element_type, ir.F32Type):
        return False
    if any(ir.ShapedType.is_dynamic_size(d) for d in t.shape) or len(t.shape) != 2:
        return False
    return str(t.layout) == "affine_map<(d0, d1) -> (d0, d1)>"


_PLAIN_MAPS = ("[affine_map<(d0, d1, d2) -> (d0, d2)>, affine_map<(d0, d1, d2) -> (d2, d1)>, "
               "affine_map<(d0, d1, d2) -> (d0, d1)>]")


def _idx(v):
    return arith.ConstantOp(ir.IndexType.get(), v).result


def _lower(op, width, registers):
    a, b, c = list(op.operands)
    if "indexing_maps" in op.attributes and str(op.attributes["indexing_maps"]) != _PLAIN_MAPS:
        return False   # a transposed or broadcast operand
    if not all(_static_rowmajor_f32(x.type) for x in (a, b, c)):
        return False
    m, k = ir.MemRefType(a.type).shape
    n = ir.MemRefType(b.type).shape[1]
    shape = micro_kernel_shape(m, n, width, registers)
    if shape is None:
        return False
    mr, v, nv = shape
    vt = ir.VectorType.get([v], ir.F32Type.get())
    with ir.InsertionPoint(op), op.location:
        rows = scf.ForOp(_idx(0), _idx(m), _idx(mr))
        with ir.InsertionPoint(rows.body):
            i0 = rows.induction_variable
            cols = scf.ForOp(_idx(0), _idx(n), _idx(v * nv))
            with ir.InsertionPoint(cols.body):
                j0 = cols.induction_variable
                ri = [arith.AddIOp(i0, _idx(r)).result if r else i0 for r in range(mr)]
                cj = [arith.AddIOp(j0, _idx(q * v)).result if q else j0 for q in range(nv)]
                acc = [vector.LoadOp(vt, c, [ri[r], cj[q]]).result for r in range(mr) for q in range(nv)]
                ks = scf.ForOp(_idx(0), _idx(k), _idx(1), acc)
                with ir.InsertionPoint(ks.body):
                    kk = ks.induction_variable
                    bv = [vector.LoadOp(vt, b, [kk, cj[q]]).result for q in range(nv)]
                    out = []
                    for r in range(mr):
                        av = vector.BroadcastOp(vt, memref.LoadOp(a, [ri[r], kk]).result).result
                        out += [vector.FMAOp(av, bv[q], ks.inner_iter_args[r * nv + q]).result for q in range(nv)]
                    scf.YieldOp(out)
                for r in range(mr):
                    for q in range(nv):
                        vector.StoreOp(ks.results[r * nv + q], c, [ri[r], cj[q]])
                scf.YieldOp([])
            scf.YieldOp([])
    op.erase()
    return True


def run(module_op, width=0, registers=0):
    lanes, regs = host_vector_shape()
    width, registers = width or lanes, registers or regs
    found = []

    def visit(op):
        if op.name == "linalg.matmul":
            found.append(op)
        return ir.WalkResult.ADVANCE
    module_op.walk(visit)
    for op in found:
        _lower(op, width, registers)
