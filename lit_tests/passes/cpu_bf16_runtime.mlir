// RUN: tessera-opt %s -p tessera-cpu-bf16-runtime | FileCheck %s

// A module with bf16 gets its own __truncsfbf2 (round to nearest even: + 0x7FFF + lsb, then >> 16; NaN
// keeps its payload's high half with the quiet bit set).
// CHECK-LABEL: llvm.func @kernel
// CHECK-LABEL: llvm.func @__truncsfbf2(%{{.*}}: f32) -> bf16
// CHECK: llvm.mlir.constant(32767 : i32)
// CHECK: llvm.fcmp "uno"
// CHECK: llvm.select
// CHECK: llvm.bitcast %{{.*}} : i16 to bf16
llvm.func @kernel(%p: !llvm.ptr) {
  %v = llvm.load %p : !llvm.ptr -> bf16
  llvm.store %v, %p : bf16, !llvm.ptr
  llvm.return
}
