// A pipeline mixing a tessera pass and upstream passes, in both spellings (-p and --pass-pipeline=,
// with or without the builtin.module(...) anchor and nested func.func(...)).
// RUN: tessera-opt %s -p 'tessera-lower-tile-to-cpu,canonicalize,cse' | FileCheck %s
// RUN: tessera-opt %s --pass-pipeline='builtin.module(tessera-lower-tile-to-cpu,func.func(canonicalize,cse))' | FileCheck %s
// RUN: tessera-opt %s -p 'tessera-lower-tile-to-cpu' | FileCheck %s --check-prefix=NOCSE

!g = memref<?xf32, strided<[?], offset: ?>>
!w = !tile.window<array<i64: 8>, f32>

// After canonicalize + cse the index constants exist once, hoisted to the top of each function.
// CHECK-LABEL: func.func private @double
// CHECK-DAG: %[[C0:.*]] = arith.constant 0 : index
// CHECK-DAG: %[[C8:.*]] = arith.constant 8 : index
// CHECK-NOT: arith.constant 8 : index
// CHECK: vector.transfer_read
// CHECK: arith.addf
// CHECK: scf.for %{{.*}} = %[[C0]] to %[[C8]] step
// CHECK-NOT: arith.constant 8 : index
// CHECK: return
// CHECK-LABEL: func.func @double_range
// CHECK-SAME: attributes {llvm.emit_c_interface}
// CHECK: scf.for
// CHECK: func.call @double(
// CHECK-LABEL: func.func @double_grid
// CHECK-SAME: attributes {llvm.emit_c_interface}
// CHECK: call @double_range(

// Without cse the lowering's per-op constants remain.
// NOCSE-LABEL: func.func private @double
// NOCSE-COUNT-2: arith.constant 8 : index
func.func @double(%x: !g, %y: !g) attributes {tessera.kernel} {
  %pid = "tile.program_id"() {axis = 0 : i32} : () -> index
  %c8 = arith.constant 8 : index
  %off = arith.muli %pid, %c8 : index
  %wx = "tile.view"(%x, %off) {sizes = array<i64: 8>, squeeze = array<i64: 0>} : (!g, index) -> !w
  %v = "tile.load"(%wx) {operandSegmentSizes = array<i32: 1, 0, 0>} : (!w) -> tensor<8xf32>
  %d = arith.addf %v, %v : tensor<8xf32>
  %wy = "tile.view"(%y, %off) {sizes = array<i64: 8>, squeeze = array<i64: 0>} : (!g, index) -> !w
  "tile.store"(%wy, %d) {operandSegmentSizes = array<i32: 1, 1, 0>} : (!w, tensor<8xf32>) -> ()
  return
}
