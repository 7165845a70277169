// RUN: tessera-opt %s -p 'tessera-pipeline-mma,tessera-place-layout-conversions{arch=sm_80 num_warps=4}' | FileCheck %s

// @epilogue: the pipelined K loop's accumulators (mma layout, 2x2 warp grid of 32x32 warp tiles) reach only
// a whole-tile store through elementwise ops (a scale by a splat, a cast to f16): the whole chain stays in
// the mma layout and is stored from registers; no conversion; the splat is the chain's own copy.
// CHECK-LABEL: func.func @epilogue
// CHECK: scf.for
// CHECK: } {tessera.layout = "mma", tessera.mma_grid = [2, 2], tessera.mma_pipeline, tessera.stored_from_registers}
// CHECK-NOT: tile.convert_layout
// CHECK: %[[HALF:.*]] = arith.constant {tessera.layout = "mma", tessera.mma_grid = [2, 2]} dense<5.000000e-01>
// CHECK: arith.mulf %{{.*}}, %[[HALF]] {tessera.layout = "mma", tessera.mma_grid = [2, 2]}
// CHECK: arith.truncf %{{.*}} {tessera.layout = "mma", tessera.mma_grid = [2, 2]}
// CHECK: "tile.store"({{.*}}) {operandSegmentSizes = array<i32: 1, 1, 0>, tessera.layout = "mma", tessera.mma_grid = [2, 2]}
// @reduced: the product also feeds a reduction (blocked layout): one conversion right after the mma
// serves every use.
// CHECK-LABEL: func.func @reduced
// CHECK: %[[P:.*]] = "tile.mma"({{.*}}) {operandSegmentSizes = array<i32: 1, 1, 0>, tessera.layout = "mma", tessera.mma_grid = [2, 2]}
// CHECK-NEXT: %[[C:.*]] = "tile.convert_layout"(%[[P]]) {layout = "blocked", tessera.mma_grid = [2, 2]}
// CHECK-NEXT: math.exp %[[C]] : tensor<64x64xf32>
// CHECK-NOT: tessera.layout
!g = memref<?x?xbf16, strided<[?, ?], offset: ?>>
!o = memref<?x?xf16, strided<[?, ?], offset: ?>>
!f = memref<?x?xf32, strided<[?, ?], offset: ?>>
func.func @epilogue(%a: !g, %b: !g, %c: !o) attributes {tessera.kernel} {
  %pm = "tile.program_id"() {axis = 0 : i32} : () -> index
  %init = arith.constant dense<2.500000e-01> : tensor<64x64xf32>
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  %c64 = arith.constant 64 : index
  %K = memref.dim %a, %c1 : !g
  %m0 = arith.muli %pm, %c64 : index
  %acc = scf.for %k0 = %c0 to %K step %c32 iter_args(%acc_in = %init) -> (tensor<64x64xf32>) {
    %va = "tile.view"(%a, %m0, %k0) {sizes = array<i64: 64, 32>, squeeze = array<i64: 0, 0>} : (!g, index, index) -> !tile.window<array<i64: 64, 32>, bf16>
    %ta = "tile.load"(%va) {operandSegmentSizes = array<i32: 1, 0, 0>} : (!tile.window<array<i64: 64, 32>, bf16>) -> tensor<64x32xbf16>
    %vb = "tile.view"(%b, %k0, %c0) {sizes = array<i64: 32, 64>, squeeze = array<i64: 0, 0>} : (!g, index, index) -> !tile.window<array<i64: 32, 64>, bf16>
    %tb = "tile.load"(%vb) {operandSegmentSizes = array<i32: 1, 0, 0>} : (!tile.window<array<i64: 32, 64>, bf16>) -> tensor<32x64xbf16>
    %d = "tile.mma"(%ta, %tb, %acc_in) {operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<64x32xbf16>, tensor<32x64xbf16>, tensor<64x64xf32>) -> tensor<64x64xf32>
    scf.yield %d : tensor<64x64xf32>
  }
  %half = arith.constant dense<5.000000e-01> : tensor<64x64xf32>
  %s = arith.mulf %acc, %half : tensor<64x64xf32>
  %h = arith.truncf %s : tensor<64x64xf32> to tensor<64x64xf16>
  %vc = "tile.view"(%c, %m0, %c0) {sizes = array<i64: 64, 64>, squeeze = array<i64: 0, 0>} : (!o, index, index) -> !tile.window<array<i64: 64, 64>, f16>
  "tile.store"(%vc, %h) {operandSegmentSizes = array<i32: 1, 1, 0>} : (!tile.window<array<i64: 64, 64>, f16>, tensor<64x64xf16>) -> ()
  return
}

func.func @reduced(%x: tensor<64x32xbf16>, %w: tensor<32x64xbf16>, %out: !f) attributes {tessera.kernel} {
  %c0 = arith.constant 0 : index
  %p = "tile.mma"(%x, %w) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<64x32xbf16>, tensor<32x64xbf16>) -> tensor<64x64xf32>
  %e = math.exp %p : tensor<64x64xf32>
  %r = "tile.reduce"(%e) {kind = "sum", axis = 1 : i64} : (tensor<64x64xf32>) -> tensor<64xf32>
  %vo = "tile.view"(%out, %c0, %c0) {sizes = array<i64: 64, 64>, squeeze = array<i64: 0, 0>} : (!f, index, index) -> !tile.window<array<i64: 64, 64>, f32>
  "tile.store"(%vo, %e) {operandSegmentSizes = array<i32: 1, 1, 0>} : (!tile.window<array<i64: 64, 64>, f32>, tensor<64x64xf32>) -> ()
  return
}
