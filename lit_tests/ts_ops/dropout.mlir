// RUN: tessera-opt %s | FileCheck %s
// RUN: tessera-opt %s | tessera-opt | FileCheck %s

// CHECK-LABEL: func.func @dropout
// CHECK: "ts.dropout"(%{{[a-z0-9]+}}) {p = 1.000000e-01 : f64, seed = 7 : i64} : (tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
func.func @dropout(%x: tensor<2x4x8xf32>) {
  %r = "ts.dropout"(%x) {p = 0.1 : f64, seed = 7 : i64} : (tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
  return
}
