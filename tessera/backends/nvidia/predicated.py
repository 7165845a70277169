"""Predicated global accesses: `@p ld.global.v4.b32` / `@p st.global.v4.b32` as inline PTX, as Triton emits
them. A run of a blocked fragment that is wholly in or wholly out of bounds (the whole-chunk specialisation)
then costs its predicate and the access, with no branch around it (LLVM has no predicated vector access; a
branch per run also made ptxas reload kernel parameters inside each branch on sm_90a).

The address is the flat global memref's aligned pointer plus the element offset, in 64 bits
(`tessera-narrow-index` keeps arithmetic on pointers wide). A load first copies the pass-through value into
its result registers, so lanes whose predicate is off keep it.
"""
from __future__ import annotations

from mlir import ir
from mlir.dialects import arith, llvm, memref, vector

from .common import elem_bytes

WORD = 4


def applies(n: int, elem) -> bool:
    """A piece of n elements moves as 1, 2 or 4 32-bit words."""
    nbytes = n * elem_bytes(elem)
    return nbytes % WORD == 0 and nbytes // WORD in (1, 2, 4)


def _address(flat, at, elem):
    """The address of element `at` of `flat`: a GEP, so LLVM scales the (sign-extended) offset in one
    multiply-add into the base."""
    i64 = ir.IntegerType.get_signless(64)
    ptr_t = ir.Type.parse("!llvm.ptr")
    address = arith.IndexCastOp(i64, memref.ExtractAlignedPointerAsIndexOp(flat).result).result
    base = llvm.IntToPtrOp(ptr_t, address).result
    dynamic = -(1 << 31)   # GEP's marker for an index taken from the dynamic operands
    return llvm.GEPOp(ptr_t, base, [arith.IndexCastOp(i64, at).result], ir.DenseI32ArrayAttr.get([dynamic]),
                      ir.TypeAttr.get(elem), None).result


def _words(piece):
    """The 32-bit words of a vector piece."""
    n = ir.VectorType(piece.type).shape[0] * elem_bytes(ir.VectorType(piece.type).element_type) // WORD
    i32 = ir.IntegerType.get_signless(32)
    as_words = vector.BitCastOp(ir.VectorType.get([n], i32), piece).result
    return [vector.ExtractOp(as_words, [], [i]).result for i in range(n)]


def _suffix(words: int) -> str:
    return f".v{words}" if words > 1 else ""


def _regs(first: int, words: int) -> str:
    regs = ", ".join(f"${first + i}" for i in range(words))
    return f"{{{regs}}}" if words > 1 else regs


def load(flat, at, pred, passthru):
    """`passthru` (a vector piece) where `pred` is off, else the piece at element offset `at` of `flat`."""
    vt = ir.VectorType(passthru.type)
    words = vt.shape[0] * elem_bytes(vt.element_type) // WORD
    i32 = ir.IntegerType.get_signless(32)
    other = _words(passthru)
    # $0..$w-1 results, $w the predicate, $w+1 the address, then the pass-through words
    movs = "".join(f"mov.b32 ${i}, ${words + 2 + i};\n\t" for i in range(words))
    asm = f"{movs}@${words} ld.global{_suffix(words)}.b32 {_regs(0, words)}, [${words + 1}];"
    constraints = ",".join(["=&r"] * words + ["b", "l"] + ["r"] * words)
    res_t = ir.Type.parse("!llvm.struct<(" + ", ".join(["i32"] * words) + ")>") if words > 1 else i32
    out = llvm.InlineAsmOp(res_t, [pred, _address(flat, at, vt.element_type)] + other, asm, constraints,
                           has_side_effects=True).res
    parts = [llvm.ExtractValueOp(i32, out, [i]).result for i in range(words)] if words > 1 else [out]
    packed = vector.FromElementsOp(ir.VectorType.get([words], i32), parts).result
    return vector.BitCastOp(vt, packed).result


def store(flat, at, pred, piece):
    """Store the vector piece at element offset `at` of `flat` where `pred` is on."""
    vt = ir.VectorType(piece.type)
    words = vt.shape[0] * elem_bytes(vt.element_type) // WORD
    asm = f"@$0 st.global{_suffix(words)}.b32 [$1], {_regs(2, words)};"
    constraints = ",".join(["b", "l"] + ["r"] * words)
    llvm.InlineAsmOp(None, [pred, _address(flat, at, vt.element_type)] + _words(piece), asm, constraints,
                     has_side_effects=True)
