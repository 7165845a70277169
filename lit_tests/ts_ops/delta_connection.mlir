// RUN: tessera-opt %s | FileCheck %s
// RUN: tessera-opt %s | tessera-opt | FileCheck %s

// CHECK-LABEL: func.func @delta_connection
// CHECK: "ts.delta_connection"(%{{[a-z0-9]+}}, %{{[a-z0-9]+}}, %{{[a-z0-9]+}}) {distance = 1.000000e+00 : f64} : (tensor<2x4x8xf32>, tensor<2x4x8xf32>, tensor<8x8xf32>) -> tensor<2x4x8xf32>
func.func @delta_connection(%x: tensor<2x4x8xf32>, %y: tensor<2x4x8xf32>, %w: tensor<8x8xf32>) {
  %r = "ts.delta_connection"(%x, %y, %w) {distance = 1.000000e+00 : f64} : (tensor<2x4x8xf32>, tensor<2x4x8xf32>, tensor<8x8xf32>) -> tensor<2x4x8xf32>
  return
}
