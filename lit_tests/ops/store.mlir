// Round trip of tile.store: plain, masked, rank-0 and shared-buffer stores.
// RUN: tessera-opt %s | FileCheck %s
// RUN: tessera-opt %s | tessera-opt | FileCheck %s
// RUN: tessera-opt %s -o %t && tessera-opt %t | diff %t -

!g = memref<?xi32, strided<[?], offset: ?>>
!w = !tile.window<array<i64: 64>, i32>
!s = memref<64xi32, #gpu.address_space<workgroup>>

// CHECK-LABEL: func.func @stores
// CHECK-SAME: (%[[X:[^:]*]]: memref<?xi32, strided<[?], offset: ?>>, %[[I:[^:]*]]: index, %[[V:[^:]*]]: tensor<64xi32>, %[[M:[^:]*]]: tensor<64xi1>, %[[S:[^:]*]]: i32)
// CHECK: %[[W:.*]] = "tile.view"(%[[X]], %[[I]])
// CHECK: "tile.store"(%[[W]], %[[V]]) {operandSegmentSizes = array<i32: 1, 1, 0>} : (!tile.window<array<i64: 64>, i32>, tensor<64xi32>) -> ()
// CHECK: "tile.store"(%[[W]], %[[V]], %[[M]]) {operandSegmentSizes = array<i32: 1, 1, 1>} : (!tile.window<array<i64: 64>, i32>, tensor<64xi32>, tensor<64xi1>) -> ()
// CHECK: "tile.store"(%{{.*}}, %[[S]]) {operandSegmentSizes = array<i32: 1, 1, 0>} : (!tile.window<array<i64>, i32>, i32) -> ()
// CHECK: "tile.store"(%[[BUF:.*]], %[[V]]) {operandSegmentSizes = array<i32: 1, 1, 0>} : (memref<64xi32, #gpu.address_space<workgroup>>, tensor<64xi32>) -> ()
// With a single optional operand IRDL does not insist on operandSegmentSizes:
// CHECK: "tile.store"(%[[BUF]], %[[V]]) : (memref<64xi32, #gpu.address_space<workgroup>>, tensor<64xi32>) -> ()
// CHECK: "tile.store"(%[[W]], %[[V]], %[[M]]) : (!tile.window<array<i64: 64>, i32>, tensor<64xi32>, tensor<64xi1>) -> ()
func.func @stores(%x: !g, %i: index, %v: tensor<64xi32>, %m: tensor<64xi1>, %s: i32) attributes {tessera.kernel} {
  %w = "tile.view"(%x, %i) {sizes = array<i64: 64>, squeeze = array<i64: 0>} : (!g, index) -> !w
  "tile.store"(%w, %v) {operandSegmentSizes = array<i32: 1, 1, 0>} : (!w, tensor<64xi32>) -> ()
  "tile.store"(%w, %v, %m) {operandSegmentSizes = array<i32: 1, 1, 1>} : (!w, tensor<64xi32>, tensor<64xi1>) -> ()
  %e = "tile.view"(%x, %i) {sizes = array<i64: 1>, squeeze = array<i64: 1>} : (!g, index) -> !tile.window<array<i64>, i32>
  "tile.store"(%e, %s) {operandSegmentSizes = array<i32: 1, 1, 0>} : (!tile.window<array<i64>, i32>, i32) -> ()
  %buf = "tile.alloc_shared"() {swizzle = "none"} : () -> !s
  "tile.store"(%buf, %v) {operandSegmentSizes = array<i32: 1, 1, 0>} : (!s, tensor<64xi32>) -> ()
  "tile.store"(%buf, %v) : (!s, tensor<64xi32>) -> ()
  "tile.store"(%w, %v, %m) : (!w, tensor<64xi32>, tensor<64xi1>) -> ()
  return
}
