// RUN: tessera-opt %s -p 'tessera-pipeline-mma' | FileCheck %s

// K loops of tile.mma over plain loads of 16-bit tiles (multiples of 16) accumulating into a splat are
// marked for the mma.sync cp.async pipeline; f32 operands and masked loads are not.
// CHECK-LABEL: func.func @gemm
// CHECK: scf.yield
// CHECK-NEXT: } {tessera.mma_pipeline}
// CHECK-LABEL: func.func @gemm_f32
// CHECK-NOT: tessera.mma_pipeline
// CHECK-LABEL: func.func @gemm_masked
// CHECK-NOT: tessera.mma_pipeline
!g = memref<?x?xbf16, strided<[?, ?], offset: ?>>
!f = memref<?x?xf32, strided<[?, ?], offset: ?>>
!wa = !tile.window<array<i64: 64, 32>, bf16>
!wb = !tile.window<array<i64: 32, 64>, bf16>
func.func @gemm(%a: !g, %b: !g, %c: !f) attributes {tessera.kernel} {
  %zero = arith.constant dense<0.000000e+00> : tensor<64x64xf32>
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  %K = memref.dim %a, %c1 : !g
  %acc = scf.for %k0 = %c0 to %K step %c32 iter_args(%acc_in = %zero) -> (tensor<64x64xf32>) {
    %va = "tile.view"(%a, %c0, %k0) {sizes = array<i64: 64, 32>, squeeze = array<i64: 0, 0>} : (!g, index, index) -> !wa
    %ta = "tile.load"(%va) {operandSegmentSizes = array<i32: 1, 0, 0>} : (!wa) -> tensor<64x32xbf16>
    %vb = "tile.view"(%b, %k0, %c0) {sizes = array<i64: 32, 64>, squeeze = array<i64: 0, 0>} : (!g, index, index) -> !wb
    %tb = "tile.load"(%vb) {operandSegmentSizes = array<i32: 1, 0, 0>} : (!wb) -> tensor<32x64xbf16>
    %d = "tile.mma"(%ta, %tb, %acc_in) {operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<64x32xbf16>, tensor<32x64xbf16>, tensor<64x64xf32>) -> tensor<64x64xf32>
    scf.yield %d : tensor<64x64xf32>
  }
  %vc = "tile.view"(%c, %c0, %c0) {sizes = array<i64: 64, 64>, squeeze = array<i64: 0, 0>} : (!f, index, index) -> !tile.window<array<i64: 64, 64>, f32>
  "tile.store"(%vc, %acc) {operandSegmentSizes = array<i32: 1, 1, 0>} : (!tile.window<array<i64: 64, 64>, f32>, tensor<64x64xf32>) -> ()
  return
}
func.func @gemm_f32(%a: !f, %b: !f, %c: !f) attributes {tessera.kernel} {
  %zero = arith.constant dense<0.000000e+00> : tensor<64x64xf32>
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  %K = memref.dim %a, %c1 : !f
  %acc = scf.for %k0 = %c0 to %K step %c32 iter_args(%acc_in = %zero) -> (tensor<64x64xf32>) {
    %va = "tile.view"(%a, %c0, %k0) {sizes = array<i64: 64, 32>, squeeze = array<i64: 0, 0>} : (!f, index, index) -> !tile.window<array<i64: 64, 32>, f32>
    %ta = "tile.load"(%va) {operandSegmentSizes = array<i32: 1, 0, 0>} : (!tile.window<array<i64: 64, 32>, f32>) -> tensor<64x32xf32>
    %vb = "tile.view"(%b, %k0, %c0) {sizes = array<i64: 32, 64>, squeeze = array<i64: 0, 0>} : (!f, index, index) -> !tile.window<array<i64: 32, 64>, f32>
    %tb = "tile.load"(%vb) {operandSegmentSizes = array<i32: 1, 0, 0>} : (!tile.window<array<i64: 32, 64>, f32>) -> tensor<32x64xf32>
    %d = "tile.mma"(%ta, %tb, %acc_in) {operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<64x32xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<64x64xf32>
    scf.yield %d : tensor<64x64xf32>
  }
  %vc = "tile.view"(%c, %c0, %c0) {sizes = array<i64: 64, 64>, squeeze = array<i64: 0, 0>} : (!f, index, index) -> !tile.window<array<i64: 64, 64>, f32>
  "tile.store"(%vc, %acc) {operandSegmentSizes = array<i32: 1, 1, 0>} : (!tile.window<array<i64: 64, 64>, f32>, tensor<64x64xf32>) -> ()
  return
}
func.func @gemm_masked(%a: !g, %b: !g, %c: !f, %m: tensor<64x32xi1>) attributes {tessera.kernel} {
  %zero = arith.constant dense<0.000000e+00> : tensor<64x64xf32>
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  %K = memref.dim %a, %c1 : !g
  %acc = scf.for %k0 = %c0 to %K step %c32 iter_args(%acc_in = %zero) -> (tensor<64x64xf32>) {
    %va = "tile.view"(%a, %c0, %k0) {sizes = array<i64: 64, 32>, squeeze = array<i64: 0, 0>} : (!g, index, index) -> !wa
    %ta = "tile.load"(%va, %m) {operandSegmentSizes = array<i32: 1, 1, 0>} : (!wa, tensor<64x32xi1>) -> tensor<64x32xbf16>
    %vb = "tile.view"(%b, %k0, %c0) {sizes = array<i64: 32, 64>, squeeze = array<i64: 0, 0>} : (!g, index, index) -> !wb
    %tb = "tile.load"(%vb) {operandSegmentSizes = array<i32: 1, 0, 0>} : (!wb) -> tensor<32x64xbf16>
    %d = "tile.mma"(%ta, %tb, %acc_in) {operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<64x32xbf16>, tensor<32x64xbf16>, tensor<64x64xf32>) -> tensor<64x64xf32>
    scf.yield %d : tensor<64x64xf32>
  }
  %vc = "tile.view"(%c, %c0, %c0) {sizes = array<i64: 64, 64>, squeeze = array<i64: 0, 0>} : (!f, index, index) -> !tile.window<array<i64: 64, 64>, f32>
  "tile.store"(%vc, %acc) {operandSegmentSizes = array<i32: 1, 1, 0>} : (!tile.window<array<i64: 64, 64>, f32>, tensor<64x64xf32>) -> ()
  return
}
