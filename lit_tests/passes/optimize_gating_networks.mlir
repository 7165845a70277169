// RUN: tessera-opt %s --split-input-file -p tessera-optimize-gating-networks | FileCheck %s

!t = tensor<4x8xf32>
!w = tensor<8x8xf32>
// Before: gemm → scale (broadcast scalar) → sigmoid → multiply. After: one gemm with the epilogue.
// CHECK-LABEL: func.func @chain
// CHECK-NEXT: %[[E:.*]] = "ts.gemm_epilogue"(%arg0, %arg1, %arg2, %arg0) {activation = "sigmoid", operandSegmentSizes = array<i32: 1, 1, 1, 1>}
// CHECK-NEXT: return %[[E]]
func.func @chain(%x: !t, %w: !w, %s: f32) -> !t {
  %g = "ts.gemm"(%x, %w) : (!t, !w) -> !t
  %b = "ts.broadcast"(%s) : (f32) -> !t
  %y = arith.mulf %g, %b : !t
  %z = "ts.sigmoid"(%y) : (!t) -> !t
  %r = arith.mulf %x, %z : !t
  return %r : !t
}

// -----

!t = tensor<4x8xf32>
!w = tensor<8x8xf32>
// The gating function of the GDN is the same chain with scale exp(-0.1·d).
// CHECK-LABEL: func.func @gating
// CHECK: %[[S:.*]] = arith.constant 0.818730{{[0-9]*}} : f32
// CHECK: "ts.gemm_epilogue"(%arg0, %arg1, %[[S]], %arg0) {activation = "sigmoid"
// CHECK-NOT: ts.gating_function
func.func @gating(%d: !t, %w: !w) -> !t {
  %g = "ts.gating_function"(%d, %w) {distance = 2.0 : f64} : (!t, !w) -> !t
  %r = arith.mulf %d, %g : !t
  return %r : !t
}

// -----

!t = tensor<4x8xf32>
!w = tensor<8x8xf32>
// The sigmoid's input is used twice: fusing would lose it; left alone.
// CHECK-LABEL: func.func @shared
// CHECK-NOT: ts.gemm_epilogue
func.func @shared(%x: !t, %w: !w) -> (!t, !t) {
  %g = "ts.gemm"(%x, %w) : (!t, !w) -> !t
  %z = "ts.sigmoid"(%g) : (!t) -> !t
  %r = arith.mulf %x, %z : !t
  return %r, %g : !t, !t
}
