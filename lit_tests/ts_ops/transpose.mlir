// RUN: tessera-opt %s | FileCheck %s
// RUN: tessera-opt %s | tessera-opt | FileCheck %s

// CHECK-LABEL: func.func @transpose
// CHECK: "ts.transpose"(%{{[a-z0-9]+}}) {perm = array<i64: 2, 1, 0>} : (tensor<2x4x8xf32>) -> tensor<8x4x2xf32>
func.func @transpose(%x: tensor<2x4x8xf32>) {
  %r = "ts.transpose"(%x) {perm = array<i64: 2, 1, 0>} : (tensor<2x4x8xf32>) -> tensor<8x4x2xf32>
  return
}
