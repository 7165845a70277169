// RUN: tessera-opt %s | FileCheck %s
// RUN: tessera-opt %s | tessera-opt | FileCheck %s

// CHECK-LABEL: func.func @gemm_epilogue
// CHECK: "ts.gemm_epilogue"(%{{[a-z0-9]+}}, %{{[a-z0-9]+}}, %{{[a-z0-9]+}}, %{{[a-z0-9]+}}) {activation = "sigmoid", operandSegmentSizes = array<i32: 1, 1, 1, 1>} : (tensor<2x4x8xf32>, tensor<8x8xf32>, f32, tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
func.func @gemm_epilogue(%x: tensor<2x4x8xf32>, %w: tensor<8x8xf32>, %c: f32) {
  %r = "ts.gemm_epilogue"(%x, %w, %c, %x) {activation = "sigmoid", operandSegmentSizes = array<i32: 1, 1, 1, 1>} : (tensor<2x4x8xf32>, tensor<8x8xf32>, f32, tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
  return
}
