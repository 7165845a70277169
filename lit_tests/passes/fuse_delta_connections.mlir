// RUN: tessera-opt %s --split-input-file -p tessera-fuse-delta-connections | FileCheck %s

!t = tensor<2x8x16xf32>
!w = tensor<16x16xf32>
// Before: a zero accumulator plus two hand-written delta connections (subtract → gating_function →
// multiply), each scaled by an attention weight read from A[i, -1].
// After: one ts.fused_delta_gating reading the target once; the per-connection ops are gone.
// CHECK-LABEL: func.func @aggregate
// CHECK-NOT: ts.gating_function
// CHECK: %[[F:.*]] = "ts.fused_delta_gating"(%arg2, %arg0, %arg1, %arg3, %arg4, %{{.*}}, %{{.*}}) {distances = array<f64: 2.000000e+00, 1.000000e+00>, operandSegmentSizes = array<i32: 1, 2, 2, 2, 0>, sparse = false}
// CHECK-NOT: arith.addf
// CHECK: return %[[F]]
func.func @aggregate(%s0: !t, %s1: !t, %t: !t, %w0: !w, %w1: !w, %A: tensor<3x3xf32>) -> !t {
  %zero = arith.constant dense<0.0> : !t
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %d0 = arith.subf %t, %s0 : !t
  %g0 = "ts.gating_function"(%d0, %w0) {distance = 2.0 : f64} : (!t, !w) -> !t
  %m0 = arith.mulf %d0, %g0 : !t
  %a0 = tensor.extract %A[%c0, %c2] : tensor<3x3xf32>
  %b0 = "ts.broadcast"(%a0) : (f32) -> !t
  %x0 = arith.mulf %m0, %b0 : !t
  %acc0 = arith.addf %zero, %x0 : !t
  %d1 = arith.subf %t, %s1 : !t
  %g1 = "ts.gating_function"(%d1, %w1) {distance = 1.0 : f64} : (!t, !w) -> !t
  %m1 = arith.mulf %d1, %g1 : !t
  %a1 = tensor.extract %A[%c1, %c2] : tensor<3x3xf32>
  %b1 = "ts.broadcast"(%a1) : (f32) -> !t
  %x1 = arith.mulf %m1, %b1 : !t
  %acc1 = arith.addf %acc0, %x1 : !t
  return %acc1 : !t
}

// -----

!t = tensor<4x8xf32>
!w = tensor<8x8xf32>
// ts.delta_connection ops plus a residual add of the target: fused with the residual operand.
// CHECK-LABEL: func.func @residual
// CHECK: "ts.fused_delta_gating"(%arg2, %arg0, %arg1, %arg3, %arg3, %{{.*}}, %{{.*}}, %arg2) {distances = array<f64: 2.000000e+00, 1.000000e+00>, operandSegmentSizes = array<i32: 1, 2, 2, 2, 1>
// CHECK-NOT: ts.delta_connection
func.func @residual(%s0: !t, %s1: !t, %t: !t, %w: !w) -> !t {
  %x0 = "ts.delta_connection"(%s0, %t, %w) {distance = 2.0 : f64} : (!t, !t, !w) -> !t
  %x1 = "ts.delta_connection"(%s1, %t, %w) {distance = 1.0 : f64} : (!t, !t, !w) -> !t
  %sum = arith.addf %x0, %x1 : !t
  %out = arith.addf %t, %sum : !t
  return %out : !t
}

// -----

!t = tensor<4x8xf32>
!w = tensor<8x8xf32>
// Different targets are not one aggregation: left alone.
// CHECK-LABEL: func.func @two_targets
// CHECK-NOT: ts.fused_delta_gating
// CHECK: arith.addf
func.func @two_targets(%s: !t, %t0: !t, %t1: !t, %w: !w) -> !t {
  %x0 = "ts.delta_connection"(%s, %t0, %w) {distance = 1.0 : f64} : (!t, !t, !w) -> !t
  %x1 = "ts.delta_connection"(%s, %t1, %w) {distance = 1.0 : f64} : (!t, !t, !w) -> !t
  %sum = arith.addf %x0, %x1 : !t
  return %sum : !t
}
