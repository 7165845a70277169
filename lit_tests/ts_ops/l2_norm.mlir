// RUN: tessera-opt %s | FileCheck %s
// RUN: tessera-opt %s | tessera-opt | FileCheck %s

// CHECK-LABEL: func.func @l2_norm
// CHECK: "ts.l2_norm"(%{{[a-z0-9]+}}) {axis = 2 : i64, keepdims = true} : (tensor<2x4x8xf32>) -> tensor<2x4x1xf32>
func.func @l2_norm(%x: tensor<2x4x8xf32>) {
  %r = "ts.l2_norm"(%x) {axis = 2 : i64, keepdims = true} : (tensor<2x4x8xf32>) -> tensor<2x4x1xf32>
  return
}
