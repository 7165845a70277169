// RUN: tessera-opt %s -p tessera-lower-graph-to-tile | FileCheck %s

!t = tensor<2x8x16xbf16>
!w = tensor<16x16xbf16>
// A fused delta gating of two sources followed by an elementwise scale: two groups, two generated
// tile kernels added to the module, named in launch order on the graph function.
// CHECK: func.func @aggregate
// CHECK-SAME: tessera.kernels = ["fused_delta_gating_2", "elementwise_{{[0-9a-f]+}}"]
// CHECK: func.func @fused_delta_gating_2(
// CHECK-SAME: tessera.kernel
// CHECK: "tile.mma"
// CHECK: "tile.store"
// CHECK: func.func @elementwise_{{[0-9a-f]+}}(
// CHECK-SAME: tessera.kernel
func.func @aggregate(%s0: !t, %s1: !t, %t: !t, %w0: !w, %w1: !w) -> tensor<2x8x16xf32> attributes {tessera.function} {
  %c0 = arith.constant 0.5 : f32
  %c1 = arith.constant 0.25 : f32
  %f = "ts.fused_delta_gating"(%t, %s0, %s1, %w0, %w1, %c0, %c1) {distances = array<f64: 2.0, 1.0>, operandSegmentSizes = array<i32: 1, 2, 2, 2, 0>, sparse = false} : (!t, !t, !t, !w, !w, f32, f32) -> tensor<2x8x16xf32>
  %two = arith.constant dense<2.0> : tensor<2x8x16xf32>
  %y = arith.mulf %f, %two : tensor<2x8x16xf32>
  return %y : tensor<2x8x16xf32>
}
