// RUN: tessera-opt %s | FileCheck %s
// RUN: tessera-opt %s | tessera-opt | FileCheck %s

// CHECK-LABEL: func.func @fused_delta_gating
// CHECK: "ts.fused_delta_gating"(%{{[a-z0-9]+}}, %{{[a-z0-9]+}}, %{{[a-z0-9]+}}, %{{[a-z0-9]+}}, %{{[a-z0-9]+}}, %{{[a-z0-9]+}}, %{{[a-z0-9]+}}, %{{[a-z0-9]+}}) {distances = array<f64: 2.000000e+00, 1.000000e+00>, operandSegmentSizes = array<i32: 1, 2, 2, 2, 1>, sparse = false} : (tensor<2x4x8xf32>, tensor<2x4x8xf32>, tensor<2x4x8xf32>, tensor<8x8xf32>, tensor<8x8xf32>, f32, f32, tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
func.func @fused_delta_gating(%x: tensor<2x4x8xf32>, %y: tensor<2x4x8xf32>, %w: tensor<8x8xf32>, %c: f32) {
  %r = "ts.fused_delta_gating"(%y, %x, %x, %w, %w, %c, %c, %y) {distances = array<f64: 2.000000e+00, 1.000000e+00>, operandSegmentSizes = array<i32: 1, 2, 2, 2, 1>, sparse = false} : (tensor<2x4x8xf32>, tensor<2x4x8xf32>, tensor<2x4x8xf32>, tensor<8x8xf32>, tensor<8x8xf32>, f32, f32, tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
  return
}
