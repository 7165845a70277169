"""CPU backend: tile IR → tensor/linalg/scf → bufferized loops → LLVM dialect → MLIR ExecutionEngine."""

# Ordered stage table after the frontend's "tile" stage. One pipeline string per stage; tessera and
# upstream passes mix freely (parsed by tessera.passes.registry).
PIPELINE_LLVM = ",".join([
    "tessera-lower-tensor-lists",
    "tessera-lower-tile-to-cpu",
    "canonicalize",
    "convert-elementwise-to-linalg",
    "one-shot-bufferize{bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map}",
    "func.func(buffer-hoisting,buffer-loop-hoisting)",
    "tessera-cpu-scratch",
    "canonicalize",
    "ownership-based-buffer-deallocation",
    "canonicalize",
    "buffer-deallocation-simplification",
    "tessera-lower-deallocations",
    "tessera-cpu-matmul",
    "tessera-cpu-reduce",
    "convert-linalg-to-loops",
    "tessera-widen-i1-memrefs",
    "arith-emulate-unsupported-floats{source-types=bf16,f16,f8E4M3FN target-type=f32}",
    "tessera-expand-fp8",
    "tessera-cpu-exp",
    "arith-expand{include-bf16=true}",
    "expand-strided-metadata",
    "lower-affine",
    "convert-scf-to-cf",
    "canonicalize",
    "convert-math-to-llvm",
    "convert-math-to-libm",
    "convert-vector-to-llvm",
    "finalize-memref-to-llvm",
    "convert-arith-to-llvm",
    "convert-index-to-llvm",
    "convert-func-to-llvm",
    "convert-cf-to-llvm",
    "reconcile-unrealized-casts",
    "tessera-cpu-bf16-runtime",
])

STAGES = [
    ("llvm", PIPELINE_LLVM),
]
