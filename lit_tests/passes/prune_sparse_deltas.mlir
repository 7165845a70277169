// RUN: tessera-opt %s --split-input-file -p 'tessera-prune-sparse-deltas{threshold=0.01}' | FileCheck %s
// RUN: tessera-opt %s --split-input-file -p 'tessera-prune-sparse-deltas{threshold=0.01},tessera-fuse-delta-connections' | FileCheck %s --check-prefix=FUSED

!t = tensor<4x8xf32>
!w = tensor<8x8xf32>
// Bound weights: the connection weighted 0.001 is removed (and a remark says which); 0.5 stays.
// CHECK: module attributes {tessera.remarks = ["pruned the delta connection from argument #1 (distance 1): weight 0.001 is below the threshold 0.01"]}
// CHECK-LABEL: func.func @bound
// CHECK: "ts.delta_connection"(%arg0, %arg2, %arg3) {distance = 2.000000e+00 : f64}
// CHECK-NOT: "ts.delta_connection"(%arg1
// FUSED-LABEL: func.func @bound
// FUSED-NOT: ts.fused_delta_gating
func.func @bound(%s0: !t, %s1: !t, %t: !t, %w: !w) -> !t {
  %c5 = arith.constant 0.5 : f32
  %c0 = arith.constant 0.001 : f32
  %x0 = "ts.delta_connection"(%s0, %t, %w) {distance = 2.0 : f64} : (!t, !t, !w) -> !t
  %b0 = "ts.broadcast"(%c5) : (f32) -> !t
  %y0 = arith.mulf %x0, %b0 : !t
  %x1 = "ts.delta_connection"(%s1, %t, %w) {distance = 1.0 : f64} : (!t, !t, !w) -> !t
  %b1 = "ts.broadcast"(%c0) : (f32) -> !t
  %y1 = arith.mulf %x1, %b1 : !t
  %sum = arith.addf %y0, %y1 : !t
  return %sum : !t
}

// -----

!t = tensor<4x8xf32>
!w = tensor<8x8xf32>
// Runtime weights: nothing can be removed at compile time; the terms are marked so that fusion
// picks the mask-skipping kernel.
// CHECK-LABEL: func.func @runtime
// CHECK: "ts.delta_connection"{{.*}}tessera.runtime_weight = 1.000000e-02
// FUSED-LABEL: func.func @runtime
// FUSED: "ts.fused_delta_gating"{{.*}}sparse = true
func.func @runtime(%s0: !t, %s1: !t, %t: !t, %w: !w, %a: f32, %b: f32) -> !t {
  %x0 = "ts.delta_connection"(%s0, %t, %w) {distance = 2.0 : f64} : (!t, !t, !w) -> !t
  %b0 = "ts.broadcast"(%a) : (f32) -> !t
  %y0 = arith.mulf %x0, %b0 : !t
  %x1 = "ts.delta_connection"(%s1, %t, %w) {distance = 1.0 : f64} : (!t, !t, !w) -> !t
  %b1 = "ts.broadcast"(%b) : (f32) -> !t
  %y1 = arith.mulf %x1, %b1 : !t
  %sum = arith.addf %y0, %y1 : !t
  return %sum : !t
}
