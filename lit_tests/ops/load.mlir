// Round trip of tile.load: plain, masked with 'other', rank-0 (scalar) and shared-buffer loads.
// RUN: tessera-opt %s | FileCheck %s
// RUN: tessera-opt %s | tessera-opt | FileCheck %s
// RUN: tessera-opt %s -o %t && tessera-opt %t | diff %t -

!g = memref<?x?xf16, strided<[?, ?], offset: ?>>
!w = !tile.window<array<i64: 8, 16>, f16>
!s = memref<8x16xf16, #gpu.address_space<workgroup>>

// CHECK-LABEL: func.func @loads
// CHECK: %[[W:.*]] = "tile.view"
// CHECK: "tile.load"(%[[W]]) {operandSegmentSizes = array<i32: 1, 0, 0>} : (!tile.window<array<i64: 8, 16>, f16>) -> tensor<8x16xf16>
// CHECK: "tile.load"(%[[W]], %{{.*}}, %{{.*}}) {operandSegmentSizes = array<i32: 1, 1, 1>}
// CHECK-SAME: : (!tile.window<array<i64: 8, 16>, f16>, tensor<8x16xi1>, f16) -> tensor<8x16xf16>
// CHECK: %[[E:.*]] = "tile.view"
// CHECK: "tile.load"(%[[E]], %{{.*}}) {operandSegmentSizes = array<i32: 1, 1, 0>} : (!tile.window<array<i64>, f16>, i1) -> f16
// CHECK: %[[B:.*]] = "tile.alloc_shared"
// CHECK: "tile.load"(%[[B]]) {operandSegmentSizes = array<i32: 1, 0, 0>} : (memref<8x16xf16, #gpu.address_space<workgroup>>) -> tensor<8x16xf16>
func.func @loads(%x: !g, %i: index, %m: tensor<8x16xi1>, %p: i1) attributes {tessera.kernel} {
  %w = "tile.view"(%x, %i, %i) {sizes = array<i64: 8, 16>, squeeze = array<i64: 0, 0>} : (!g, index, index) -> !w
  %0 = "tile.load"(%w) {operandSegmentSizes = array<i32: 1, 0, 0>} : (!w) -> tensor<8x16xf16>
  %other = arith.constant 1.0 : f16
  %1 = "tile.load"(%w, %m, %other) {operandSegmentSizes = array<i32: 1, 1, 1>} : (!w, tensor<8x16xi1>, f16) -> tensor<8x16xf16>
  %e = "tile.view"(%x, %i, %i) {sizes = array<i64: 1, 1>, squeeze = array<i64: 1, 1>} : (!g, index, index) -> !tile.window<array<i64>, f16>
  %2 = "tile.load"(%e, %p) {operandSegmentSizes = array<i32: 1, 1, 0>} : (!tile.window<array<i64>, f16>, i1) -> f16
  %buf = "tile.alloc_shared"() {swizzle = "none"} : () -> !s
  %3 = "tile.load"(%buf) {operandSegmentSizes = array<i32: 1, 0, 0>} : (!s) -> tensor<8x16xf16>
  return
}
