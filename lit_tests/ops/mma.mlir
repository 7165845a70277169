// Round trip of tile.mma with and without an accumulator.
// RUN: tessera-opt %s | FileCheck %s
// RUN: tessera-opt %s | tessera-opt | FileCheck %s
// RUN: tessera-opt %s -o %t && tessera-opt %t | diff %t -

// CHECK-LABEL: func.func @mma
// CHECK-SAME: (%[[A:[^:]*]]: tensor<16x32xf16>, %[[B:[^:]*]]: tensor<32x8xf16>, %[[C:[^:]*]]: tensor<16x8xf32>)
// CHECK: %[[D:.*]] = "tile.mma"(%[[A]], %[[B]]) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<16x32xf16>, tensor<32x8xf16>) -> tensor<16x8xf32>
// CHECK: %[[E:.*]] = "tile.mma"(%[[A]], %[[B]], %[[D]]) {operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<16x32xf16>, tensor<32x8xf16>, tensor<16x8xf32>) -> tensor<16x8xf32>
// With a single optional operand IRDL does not insist on operandSegmentSizes:
// CHECK: "tile.mma"(%[[A]], %[[B]]) : (tensor<16x32xf16>, tensor<32x8xf16>) -> tensor<16x8xf32>
// CHECK: "tile.mma"(%[[A]], %[[B]], %[[E]]) : (tensor<16x32xf16>, tensor<32x8xf16>, tensor<16x8xf32>) -> tensor<16x8xf32>
func.func @mma(%a: tensor<16x32xf16>, %b: tensor<32x8xf16>, %c: tensor<16x8xf32>) -> tensor<16x8xf32> {
  %d = "tile.mma"(%a, %b) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<16x32xf16>, tensor<32x8xf16>) -> tensor<16x8xf32>
  %e = "tile.mma"(%a, %b, %d) {operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<16x32xf16>, tensor<32x8xf16>, tensor<16x8xf32>) -> tensor<16x8xf32>
  %f = "tile.mma"(%a, %b) : (tensor<16x32xf16>, tensor<32x8xf16>) -> tensor<16x8xf32>
  %g = "tile.mma"(%a, %b, %e) : (tensor<16x32xf16>, tensor<32x8xf16>, tensor<16x8xf32>) -> tensor<16x8xf32>
  return %g : tensor<16x8xf32>
}
