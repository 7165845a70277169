"""Instruction semantics, grouped by family; one table maps each base opcode to the function that
compiles an instruction into a closure `fn(em)` (em: the active-lane mask, None for all lanes).

Families: integer (ALU, bit fields, predicate logic), floating (ALU with rounding modes, NaN rules,
.ftz, bf16/bf16x2, approximate transcendentals), convert (cvt, cvta, mov, selp, setp), memory
(ld, st), warp (shfl, ldmatrix, mma.sync), async_copy (cp.async groups), hopper (mbarrier, TMA,
fences), wgmma. Branches, exits and bar.sync are the scheduler's (machine.py)."""
from __future__ import annotations

from ....errors import EmulatorError
from . import async_copy, convert, floating, hopper, integer, memory, warp, wgmma

ARITH = ("add", "sub", "mul", "mad", "fma", "div", "rem", "min", "max", "neg", "abs", "and", "or", "xor", "not",
         "shl", "shr", "ex2", "lg2", "rcp", "sqrt", "rsqrt", "sin", "cos", "tanh", "bfe", "testp", "copysign")


def _arith(ins, M):
    types = [m for m in ins.mods if m in ("f16", "f32", "f64", "bf16", "bf16x2", "f16x2")]
    if types:
        return floating.compile(ins, M)
    return integer.compile(ins, M)


def _nop(ins, M):
    return lambda em: None


TABLE = {op: _arith for op in ARITH}
TABLE.update({
    "cvt": convert.cvt, "cvta": convert.cvta, "mov": convert.mov, "selp": convert.selp, "setp": convert.setp,
    "ld": memory.ld, "st": memory.st, "prefetch": _nop,
    "shfl": warp.shfl, "ldmatrix": warp.ldmatrix, "mma": warp.mma, "bar": _nop, "barrier": _nop,
    "cp": async_copy.cp, "mbarrier": hopper.mbarrier, "fence": hopper.fence, "membar": _nop,
    "wgmma": wgmma.compile, "setmaxnreg": hopper.setmaxnreg, "prmt": integer.prmt, "bfi": integer.bfi,
})


def compile_instruction(ins, M):
    """The closure for one instruction; predicated instructions run on `em & pred`."""
    make = TABLE.get(ins.opcode)
    if make is None:
        raise EmulatorError(f"the emulator does not implement `{ins.opcode}` (PTX line {ins.line}: `{ins.text}`)")
    try:
        fn = make(ins, M)
    except EmulatorError:
        raise
    except (KeyError, IndexError, ValueError, StopIteration, AssertionError) as e:
        raise EmulatorError(f"the emulator does not implement the form `{ins.form}` (PTX line {ins.line}: "
                            f"`{ins.text}`): {type(e).__name__} {e}") from None
    if ins.pred is None:
        return fn
    s = M.slot(ins.pred, ins)
    regs = M.regs_ref
    neg = ins.negate

    def guarded(em):
        p = regs[s]
        if neg:
            p = ~p
        m = p if em is None else (p & em)
        if m.any():
            fn(m)
    return guarded

