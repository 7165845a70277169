"""tessera-cpu-bf16-runtime: define `__truncsfbf2` (f32 → bf16, round to nearest even) in the module.

Why: on an x86 host without AVX512-BF16, LLVM keeps bf16 values that cross blocks (a masked load's
result and its zero, merged at a branch) as f32 and truncates them back with a call to compiler-rt's
`__truncsfbf2`, which MLIR's ExecutionEngine does not link: the kernel fails to load ("Symbols not
found: __truncsfbf2") on such hosts and runs on others. The module carries its own definition, in
integer arithmetic (quiet NaNs stay NaN), which the JIT links like any function of the module.

Runs on the LLVM dialect at the end of the CPU pipeline; does nothing when the module already defines
or declares the symbol, or has no bf16 at all.
"""
from __future__ import annotations

from mlir import ir

name = "tessera-cpu-bf16-runtime"

SYMBOL = "__truncsfbf2"

_DEFINITION = r"""
llvm.func @__truncsfbf2(%x: f32) -> bf16 attributes {no_unwind} {
  %bits = llvm.bitcast %x : f32 to i32
  %c16 = llvm.mlir.constant(16 : i32) : i32
  %high = llvm.lshr %bits, %c16 : i32
  %one = llvm.mlir.constant(1 : i32) : i32
  %lsb = llvm.and %high, %one : i32
  %bias = llvm.mlir.constant(32767 : i32) : i32
  %biased = llvm.add %bits, %bias : i32
  %tie = llvm.add %biased, %lsb : i32
  %rounded = llvm.lshr %tie, %c16 : i32
  %nan = llvm.fcmp "uno" %x, %x : f32
  %quiet_bit = llvm.mlir.constant(64 : i32) : i32
  %quiet = llvm.or %high, %quiet_bit : i32
  %pick = llvm.select %nan, %quiet, %rounded : i1, i32
  %short = llvm.trunc %pick : i32 to i16
  %r = llvm.bitcast %short : i16 to bf16
  llvm.return %r : bf16
}
"""


def run(module_op):
    body = module_op.regions[0].blocks[0]
    for op in body.operations:
        sym = op.attributes["sym_name"] if "sym_name" in op.attributes else None
        if sym is not None and ir.StringAttr(sym).value == SYMBOL:
            return
    if "bf16" not in str(module_op):
        return
    definition = ir.Module.parse(_DEFINITION, context=module_op.context)
    for op in list(definition.body.operations):
        op.detach_from_parent()
        body.append(op)
