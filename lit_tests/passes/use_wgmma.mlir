// RUN: tessera-opt %s -p 'tessera-use-tma,tessera-use-wgmma{num_warps=4}' | FileCheck %s
// RUN: tessera-opt %s -p 'tessera-use-tma,tessera-use-wgmma{num_warps=8}' | FileCheck %s
// RUN: tessera-opt %s -p 'tessera-use-tma,tessera-use-wgmma{num_warps=16}' | FileCheck %s --check-prefix=SIXTEEN

// A K loop of mma over TMA loads of 128x64 (A) and 64x128 (B) bf16 tiles, accumulating from zero:
// marked for WGMMA, with 4 warps (one warpgroup) or 8 (two consumer warpgroups of 64 rows each); with
// 16 warps it is not. The same with a 64x24 B tile (wgmma's N is any multiple of 8).
// CHECK: scf.for
// CHECK: tessera.tma
// CHECK: tessera.tma
// CHECK: scf.yield
// CHECK-NEXT: } {tessera.wgmma}
// CHECK-LABEL: func.func @gemm_n24
// CHECK: scf.for
// CHECK: scf.yield
// CHECK-NEXT: } {tessera.wgmma}
// SIXTEEN-NOT: tessera.wgmma
!g = memref<?x?xbf16, strided<[?, ?], offset: ?>>
!o = memref<?x?xf32, strided<[?, ?], offset: ?>>
func.func @gemm(%a: !g, %b: !g, %c: !o) attributes {tessera.kernel, tessera.tma_ok = [true, true, true]} {
  %pm = "tile.program_id"() {axis = 0 : i32} : () -> index
  %pn = "tile.program_id"() {axis = 1 : i32} : () -> index
  %zero = arith.constant dense<0.000000e+00> : tensor<128x128xf32>
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %c128 = arith.constant 128 : index
  %K = memref.dim %a, %c1 : !g
  %m0 = arith.muli %pm, %c128 : index
  %n0 = arith.muli %pn, %c128 : index
  %acc = scf.for %k0 = %c0 to %K step %c64 iter_args(%acc_in = %zero) -> (tensor<128x128xf32>) {
    %va = "tile.view"(%a, %m0, %k0) {sizes = array<i64: 128, 64>, squeeze = array<i64: 0, 0>} : (!g, index, index) -> !tile.window<array<i64: 128, 64>, bf16>
    %ta = "tile.load"(%va) {operandSegmentSizes = array<i32: 1, 0, 0>} : (!tile.window<array<i64: 128, 64>, bf16>) -> tensor<128x64xbf16>
    %vb = "tile.view"(%b, %k0, %n0) {sizes = array<i64: 64, 128>, squeeze = array<i64: 0, 0>} : (!g, index, index) -> !tile.window<array<i64: 64, 128>, bf16>
    %tb = "tile.load"(%vb) {operandSegmentSizes = array<i32: 1, 0, 0>} : (!tile.window<array<i64: 64, 128>, bf16>) -> tensor<64x128xbf16>
    %d = "tile.mma"(%ta, %tb, %acc_in) {operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<128x64xbf16>, tensor<64x128xbf16>, tensor<128x128xf32>) -> tensor<128x128xf32>
    scf.yield %d : tensor<128x128xf32>
  }
  %vc = "tile.view"(%c, %m0, %n0) {sizes = array<i64: 128, 128>, squeeze = array<i64: 0, 0>} : (!o, index, index) -> !tile.window<array<i64: 128, 128>, f32>
  "tile.store"(%vc, %acc) {operandSegmentSizes = array<i32: 1, 1, 0>} : (!tile.window<array<i64: 128, 128>, f32>, tensor<128x128xf32>) -> ()
  return
}

func.func @gemm_n24(%a: !g, %b: !g, %c: !o) attributes {tessera.kernel, tessera.tma_ok = [true, true, true]} {
  %pm = "tile.program_id"() {axis = 0 : i32} : () -> index
  %pn = "tile.program_id"() {axis = 1 : i32} : () -> index
  %zero = arith.constant dense<0.000000e+00> : tensor<128x24xf32>
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %c128 = arith.constant 128 : index
  %c24 = arith.constant 24 : index
  %K = memref.dim %a, %c1 : !g
  %m0 = arith.muli %pm, %c128 : index
  %n0 = arith.muli %pn, %c24 : index
  %acc = scf.for %k0 = %c0 to %K step %c64 iter_args(%acc_in = %zero) -> (tensor<128x24xf32>) {
    %va = "tile.view"(%a, %m0, %k0) {sizes = array<i64: 128, 64>, squeeze = array<i64: 0, 0>} : (!g, index, index) -> !tile.window<array<i64: 128, 64>, bf16>
    %ta = "tile.load"(%va) {operandSegmentSizes = array<i32: 1, 0, 0>} : (!tile.window<array<i64: 128, 64>, bf16>) -> tensor<128x64xbf16>
    %vb = "tile.view"(%b, %k0, %n0) {sizes = array<i64: 64, 24>, squeeze = array<i64: 0, 0>} : (!g, index, index) -> !tile.window<array<i64: 64, 24>, bf16>
    %tb = "tile.load"(%vb) {operandSegmentSizes = array<i32: 1, 0, 0>} : (!tile.window<array<i64: 64, 24>, bf16>) -> tensor<64x24xbf16>
    %d = "tile.mma"(%ta, %tb, %acc_in) {operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<128x64xbf16>, tensor<64x24xbf16>, tensor<128x24xf32>) -> tensor<128x24xf32>
    scf.yield %d : tensor<128x24xf32>
  }
  %vc = "tile.view"(%c, %m0, %n0) {sizes = array<i64: 128, 24>, squeeze = array<i64: 0, 0>} : (!o, index, index) -> !tile.window<array<i64: 128, 24>, f32>
  "tile.store"(%vc, %acc) {operandSegmentSizes = array<i32: 1, 1, 0>} : (!tile.window<array<i64: 128, 24>, f32>, tensor<128x24xf32>) -> ()
  return
}
