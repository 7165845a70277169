"""Predicated global accesses: `@p ld.global.v4.b32` / `@p st.global.v4.b32` as inline PTX, as Triton emits
them. A run of a blocked fragment that is wholly in or wholly out of bounds (the whole-chunk specialisation)
then costs its predicate and the access, with no branch around it (LLVM has no predicated vector access; a
branch per run also made ptxas reload kernel parameters inside each branch on sm_90a).

The address is the flat memref's aligned pointer plus the element offset, in 64 bits
(`tessera-narrow-index` keeps arithmetic on pointers wide). A load first copies the pass-through value into
its result registers, so lanes whose predicate is off keep it. Single lanes (`load_lane`, `store_lane`:
masked lanes of large thread-cyclic fragments) also go to shared memory, and may be 16-bit.
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
    if not isinstance(elem, ir.IntegerType) and str(elem) not in ("f16", "bf16", "f32", "f64"):
        # fp8 has no LLVM type: the GEP steps over bytes of its width (an LLVM translation abort otherwise)
        elem = ir.IntegerType.get_signless(8 * elem_bytes(elem))
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


def _space(flat) -> str:
    space = ir.MemRefType(flat.type).memory_space
    return "shared" if space is not None and "workgroup" in str(space) else "global"


def load(flat, at, pred, passthru):
    """`passthru` (a vector piece) where `pred` is off, else the piece at element offset `at` of `flat`."""
    vt = ir.VectorType(passthru.type)
    words = vt.shape[0] * elem_bytes(vt.element_type) // WORD
    i32 = ir.IntegerType.get_signless(32)
    other = _words(passthru)
    # $0..$w-1 results, $w the predicate, $w+1 the address, then the pass-through words
    movs = "".join(f"mov.b32 ${i}, ${words + 2 + i};\n\t" for i in range(words))
    asm = f"{movs}@${words} ld.{_space(flat)}{_suffix(words)}.b32 {_regs(0, words)}, [${words + 1}];"
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
    asm = f"@$0 st.{_space(flat)}{_suffix(words)}.b32 [$1], {_regs(2, words)};"
    constraints = ",".join(["b", "l"] + ["r"] * words)
    llvm.InlineAsmOp(None, [pred, _address(flat, at, vt.element_type)] + _words(piece), asm, constraints,
                     has_side_effects=True)


def lane_applies(elem) -> bool:
    """One element moves by a predicated access: 16, 32 or 64 bits (not i1 or 8-bit types)."""
    return elem_bytes(elem) in (2, 4, 8) and not (isinstance(elem, ir.IntegerType) and elem.width == 1)


def _one(x):
    return vector.BroadcastOp(ir.VectorType.get([1], x.type), x).result


def _half(elem):
    return elem_bytes(elem) == 2


def load_lane(flat, at, pred, other):
    """The element at offset `at` of `flat` where `pred` is on, else the scalar `other`."""
    if not _half(other.type):
        return vector.ExtractOp(load(flat, at, pred, _one(other)), [], [0]).result
    i16 = ir.IntegerType.get_signless(16)
    bits = arith.BitcastOp(i16, other).result
    asm = f"mov.b16 $0, $3;\n\t@$1 ld.{_space(flat)}.b16 $0, [$2];"
    out = llvm.InlineAsmOp(i16, [pred, _address(flat, at, other.type), bits], asm, "=&h,b,l,h",
                           has_side_effects=True).res
    return arith.BitcastOp(other.type, out).result


def store_lane(flat, at, pred, x):
    """Store the scalar `x` at offset `at` of `flat` where `pred` is on."""
    if not _half(x.type):
        store(flat, at, pred, _one(x))
        return
    bits = arith.BitcastOp(ir.IntegerType.get_signless(16), x).result
    llvm.InlineAsmOp(None, [pred, _address(flat, at, x.type), bits], f"@$0 st.{_space(flat)}.b16 [$1], $2;", "b,l,h",
                     has_side_effects=True)
