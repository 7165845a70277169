// RUN: tessera-opt %s | FileCheck %s
// RUN: tessera-opt %s | tessera-opt | FileCheck %s

// CHECK-LABEL: func.func @reduce
// CHECK: "ts.reduce"(%{{[a-z0-9]+}}) {axes = array<i64: 0, 2>, keepdims = false, kind = "mean"} : (tensor<2x4x8xf32>) -> tensor<4xf32>
func.func @reduce(%x: tensor<2x4x8xf32>) {
  %r = "ts.reduce"(%x) {axes = array<i64: 0, 2>, keepdims = false, kind = "mean"} : (tensor<2x4x8xf32>) -> tensor<4xf32>
  return
}
