// RUN: tessera-opt %s | FileCheck %s
// RUN: tessera-opt %s | tessera-opt | FileCheck %s

// CHECK-LABEL: func.func @gating_function
// CHECK: "ts.gating_function"(%{{[a-z0-9]+}}, %{{[a-z0-9]+}}) {distance = 2.000000e+00 : f64} : (tensor<2x4x8xf32>, tensor<8x8xf32>) -> tensor<2x4x8xf32>
func.func @gating_function(%x: tensor<2x4x8xf32>, %w: tensor<8x8xf32>) {
  %r = "ts.gating_function"(%x, %w) {distance = 2.000000e+00 : f64} : (tensor<2x4x8xf32>, tensor<8x8xf32>) -> tensor<2x4x8xf32>
  return
}
