// RUN: tessera-opt %s | FileCheck %s
// RUN: tessera-opt %s | tessera-opt | FileCheck %s

// CHECK-LABEL: func.func @sigmoid
// CHECK: "ts.sigmoid"(%{{[a-z0-9]+}}) : (tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
func.func @sigmoid(%x: tensor<2x4x8xf32>) {
  %r = "ts.sigmoid"(%x) : (tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
  return
}
