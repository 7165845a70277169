// Round trip of tile.cp_async (global window -> shared buffer).
// RUN: tessera-opt %s | FileCheck %s
// RUN: tessera-opt %s | tessera-opt | FileCheck %s
// RUN: tessera-opt %s -o %t && tessera-opt %t | diff %t -

!g = memref<?x?xf16, strided<[?, ?], offset: ?>>
!w = !tile.window<array<i64: 64, 32>, f16>
!s = memref<64x32xf16, #gpu.address_space<workgroup>>

// CHECK-LABEL: func.func @copy
// CHECK: %[[S:.*]] = "tile.alloc_shared"
// CHECK: %[[W:.*]] = "tile.view"
// CHECK: "tile.cp_async"(%[[S]], %[[W]]) {bypass_l1 = false} : (memref<64x32xf16, #gpu.address_space<workgroup>>, !tile.window<array<i64: 64, 32>, f16>) -> ()
// CHECK: "tile.cp_async"(%[[S]], %{{.*}}) {bypass_l1 = true}
func.func @copy(%x: !g, %i: index) attributes {tessera.kernel} {
  %s = "tile.alloc_shared"() {swizzle = "none"} : () -> !s
  %w = "tile.view"(%x, %i, %i) {sizes = array<i64: 64, 32>, squeeze = array<i64: 0, 0>} : (!g, index, index) -> !w
  "tile.cp_async"(%s, %w) {bypass_l1 = false} : (!s, !w) -> ()
  %w2 = "tile.view"(%x, %i, %i) {sizes = array<i64: 64, 32>, squeeze = array<i64: 0, 0>} : (!g, index, index) -> !w
  "tile.cp_async"(%s, %w2) {bypass_l1 = true} : (!s, !w) -> ()
  return
}
