// RUN: tessera-opt %s -p tessera-use-tma | FileCheck %s

!g = memref<?x?xbf16, strided<[?, ?], offset: ?>>
// Loads of 128x64, 64x128 and 64x32 bf16 windows of TMA-compatible arguments are marked (rows of whole
// 16-byte chunks); a masked load, a 64x12 window (24-byte rows) and a load of an argument without the
// stride guarantee are not.
// CHECK-LABEL: func.func @k
// CHECK: "tile.load"(%{{.*}}) {operandSegmentSizes = array<i32: 1, 0, 0>, tessera.tma}
// CHECK-SAME: -> tensor<128x64xbf16>
// CHECK: "tile.load"(%{{.*}}) {operandSegmentSizes = array<i32: 1, 0, 0>, tessera.tma}
// CHECK-SAME: -> tensor<64x128xbf16>
// CHECK: "tile.load"(%{{.*}}, %{{.*}}) {operandSegmentSizes = array<i32: 1, 1, 0>} :
// CHECK: "tile.load"(%{{.*}}) {operandSegmentSizes = array<i32: 1, 0, 0>, tessera.tma}
// CHECK-SAME: -> tensor<64x32xbf16>
// CHECK: "tile.load"(%{{.*}}) {operandSegmentSizes = array<i32: 1, 0, 0>} :
// CHECK-SAME: -> tensor<64x12xbf16>
// CHECK: "tile.load"(%{{.*}}) {operandSegmentSizes = array<i32: 1, 0, 0>} :
// CHECK-SAME: -> tensor<128x64xbf16>
func.func @k(%a: !g, %b: !g, %c: !g) attributes {tessera.kernel, tessera.tma_ok = [true, true, false]} {
  %c0 = arith.constant 0 : index
  %va = "tile.view"(%a, %c0, %c0) {sizes = array<i64: 128, 64>, squeeze = array<i64: 0, 0>} : (!g, index, index) -> !tile.window<array<i64: 128, 64>, bf16>
  %ta = "tile.load"(%va) {operandSegmentSizes = array<i32: 1, 0, 0>} : (!tile.window<array<i64: 128, 64>, bf16>) -> tensor<128x64xbf16>
  %vb = "tile.view"(%b, %c0, %c0) {sizes = array<i64: 64, 128>, squeeze = array<i64: 0, 0>} : (!g, index, index) -> !tile.window<array<i64: 64, 128>, bf16>
  %tb = "tile.load"(%vb) {operandSegmentSizes = array<i32: 1, 0, 0>} : (!tile.window<array<i64: 64, 128>, bf16>) -> tensor<64x128xbf16>
  %m = arith.constant dense<true> : tensor<128x64xi1>
  %tm = "tile.load"(%va, %m) {operandSegmentSizes = array<i32: 1, 1, 0>} : (!tile.window<array<i64: 128, 64>, bf16>, tensor<128x64xi1>) -> tensor<128x64xbf16>
  %vn = "tile.view"(%b, %c0, %c0) {sizes = array<i64: 64, 32>, squeeze = array<i64: 0, 0>} : (!g, index, index) -> !tile.window<array<i64: 64, 32>, bf16>
  %tn = "tile.load"(%vn) {operandSegmentSizes = array<i32: 1, 0, 0>} : (!tile.window<array<i64: 64, 32>, bf16>) -> tensor<64x32xbf16>
  %vt = "tile.view"(%b, %c0, %c0) {sizes = array<i64: 64, 12>, squeeze = array<i64: 0, 0>} : (!g, index, index) -> !tile.window<array<i64: 64, 12>, bf16>
  %tt = "tile.load"(%vt) {operandSegmentSizes = array<i32: 1, 0, 0>} : (!tile.window<array<i64: 64, 12>, bf16>) -> tensor<64x12xbf16>
  %vc = "tile.view"(%c, %c0, %c0) {sizes = array<i64: 128, 64>, squeeze = array<i64: 0, 0>} : (!g, index, index) -> !tile.window<array<i64: 128, 64>, bf16>
  %tc = "tile.load"(%vc) {operandSegmentSizes = array<i32: 1, 0, 0>} : (!tile.window<array<i64: 128, 64>, bf16>) -> tensor<128x64xbf16>
  return
}
