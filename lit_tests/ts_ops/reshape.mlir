// RUN: tessera-opt %s | FileCheck %s
// RUN: tessera-opt %s | tessera-opt | FileCheck %s

// CHECK-LABEL: func.func @reshape
// CHECK: "ts.reshape"(%{{[a-z0-9]+}}) : (tensor<2x4x8xf32>) -> tensor<8x8xf32>
func.func @reshape(%x: tensor<2x4x8xf32>) {
  %r = "ts.reshape"(%x) : (tensor<2x4x8xf32>) -> tensor<8x8xf32>
  return
}
