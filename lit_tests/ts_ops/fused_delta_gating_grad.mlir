// RUN: tessera-opt %s | FileCheck %s
// RUN: tessera-opt %s | tessera-opt | FileCheck %s

// The backward pass of ts.fused_delta_gating (two sources): the gradients of the target, each source, each
// gate matrix and the coefficients (as one [n] tensor), from the output's cotangent dy.
// CHECK-LABEL: func.func @fused_delta_gating_grad
// CHECK: %{{.*}}:6 = "ts.fused_delta_gating_grad"(%{{[a-z0-9]+}}, %{{[a-z0-9]+}}, %{{[a-z0-9]+}}, %{{[a-z0-9]+}}, %{{[a-z0-9]+}}, %{{[a-z0-9]+}}, %{{[a-z0-9]+}}, %{{[a-z0-9]+}}) {distances = array<f64: 2.000000e+00, 1.000000e+00>, operandSegmentSizes = array<i32: 1, 2, 2, 2, 1>, resultSegmentSizes = array<i32: 1, 2, 2, 1>, sparse = false} : (tensor<2x4x8xf32>, tensor<2x4x8xf32>, tensor<2x4x8xf32>, tensor<8x8xf32>, tensor<8x8xf32>, f32, f32, tensor<2x4x8xf32>) -> (tensor<2x4x8xf32>, tensor<2x4x8xf32>, tensor<2x4x8xf32>, tensor<8x8xf32>, tensor<8x8xf32>, tensor<2xf32>)
func.func @fused_delta_gating_grad(%x: tensor<2x4x8xf32>, %y: tensor<2x4x8xf32>, %w: tensor<8x8xf32>, %c: f32) {
  %r:6 = "ts.fused_delta_gating_grad"(%y, %x, %x, %w, %w, %c, %c, %y) {distances = array<f64: 2.000000e+00, 1.000000e+00>, operandSegmentSizes = array<i32: 1, 2, 2, 2, 1>, resultSegmentSizes = array<i32: 1, 2, 2, 1>, sparse = false} : (tensor<2x4x8xf32>, tensor<2x4x8xf32>, tensor<2x4x8xf32>, tensor<8x8xf32>, tensor<8x8xf32>, f32, f32, tensor<2x4x8xf32>) -> (tensor<2x4x8xf32>, tensor<2x4x8xf32>, tensor<2x4x8xf32>, tensor<8x8xf32>, tensor<8x8xf32>, tensor<2xf32>)
  return
}
