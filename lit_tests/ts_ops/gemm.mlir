// RUN: tessera-opt %s | FileCheck %s
// RUN: tessera-opt %s | tessera-opt | FileCheck %s

// CHECK-LABEL: func.func @gemm
// CHECK: "ts.gemm"(%{{[a-z0-9]+}}, %{{[a-z0-9]+}}) : (tensor<2x4x8xf32>, tensor<8x8xf32>) -> tensor<2x4x8xf32>
func.func @gemm(%x: tensor<2x4x8xf32>, %w: tensor<8x8xf32>) {
  %r = "ts.gemm"(%x, %w) : (tensor<2x4x8xf32>, tensor<8x8xf32>) -> tensor<2x4x8xf32>
  return
}
