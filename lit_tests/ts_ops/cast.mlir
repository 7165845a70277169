// RUN: tessera-opt %s | FileCheck %s
// RUN: tessera-opt %s | tessera-opt | FileCheck %s

// CHECK-LABEL: func.func @cast
// CHECK: "ts.cast"(%{{[a-z0-9]+}}) : (tensor<2x4x8xf32>) -> tensor<2x4x8xbf16>
func.func @cast(%x: tensor<2x4x8xf32>) {
  %r = "ts.cast"(%x) : (tensor<2x4x8xf32>) -> tensor<2x4x8xbf16>
  return
}
