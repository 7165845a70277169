// RUN: tessera-opt %s | FileCheck %s
// RUN: tessera-opt %s | tessera-opt | FileCheck %s

// CHECK-LABEL: func.func @broadcast
// CHECK: "ts.broadcast"(%{{[a-z0-9]+}}) : (f32) -> tensor<2x4x8xf32>
func.func @broadcast(%c: f32) {
  %r = "ts.broadcast"(%c) : (f32) -> tensor<2x4x8xf32>
  return
}
