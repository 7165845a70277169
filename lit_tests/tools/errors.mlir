// Parse errors and verifier errors print `file:line:col: error: ...` with the source line and a
// caret, and exit 1: never a Python traceback. With --split-input-file every chunk is reported
// (line numbers stay those of the whole file).
// RUN: not tessera-opt %s --split-input-file 2>&1 | FileCheck %s
// RUN: not tessera-opt %s.missing 2>&1 | FileCheck %s --check-prefix=NOFILE

// CHECK-NOT: Traceback
// CHECK: errors.mlir:[[# @LINE + 5]]:8: error: custom op 'foo' is unknown
// CHECK-NEXT: {{^}}  %1 = foo
// CHECK-NEXT: {{^}}       ^
func.func @syntax() {
  %0 = arith.constant 0 : index
  %1 = foo
  return
}

// -----
// CHECK: errors.mlir:[[# @LINE + 2]]:8: error: 'tile.mma' op inner dims differ: a is 16x32, b is 16x8
func.func @verify(%a: tensor<16x32xf16>, %b: tensor<16x8xf16>) {
  %0 = "tile.mma"(%a, %b) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<16x32xf16>, tensor<16x8xf16>) -> tensor<16x8xf32>
  return
}

// -----
// CHECK: errors.mlir:[[# @LINE + 2]]:8: error: '"avg"' does not satisfy the constraint
func.func @irdl(%x: tensor<16xf32>) {
  %0 = "tile.reduce"(%x) {kind = "avg", axis = 0 : i64} : (tensor<16xf32>) -> f32
  return
}

// -----
// A chunk with several top-level ops (parsed into an implicit module) still names the file.
func.func @ok() {
  return
}
// CHECK: errors.mlir:[[# @LINE + 2]]:8: error: 'tile.arange' op end (0) must be greater than start (0)
func.func @several() {
  %0 = "tile.arange"() {start = 0 : i64, end = 0 : i64} : () -> tensor<0xi32>
  return
}
// CHECK-NOT: Traceback

// NOFILE: tessera-opt: error: cannot read input '{{.*}}errors.mlir.missing'
