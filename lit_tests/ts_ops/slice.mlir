// RUN: tessera-opt %s | FileCheck %s
// RUN: tessera-opt %s | tessera-opt | FileCheck %s

// CHECK-LABEL: func.func @slice
// CHECK: "ts.slice"(%{{[a-z0-9]+}}) {offsets = array<i64: 0, 1, 2>, sizes = array<i64: 2, 2, 1>, squeeze = array<i64: 0, 0, 1>} : (tensor<2x4x8xf32>) -> tensor<2x2xf32>
func.func @slice(%x: tensor<2x4x8xf32>) {
  %r = "ts.slice"(%x) {offsets = array<i64: 0, 1, 2>, sizes = array<i64: 2, 2, 1>, squeeze = array<i64: 0, 0, 1>} : (tensor<2x4x8xf32>) -> tensor<2x2xf32>
  return
}
