// RUN: tessera-opt %s | FileCheck %s
// RUN: tessera-opt %s | tessera-opt | FileCheck %s

// CHECK-LABEL: func.func @softmax
// CHECK: "ts.softmax"(%{{[a-z0-9]+}}) {axis = 2 : i64} : (tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
func.func @softmax(%x: tensor<2x4x8xf32>) {
  %r = "ts.softmax"(%x) {axis = 2 : i64} : (tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
  return
}
