// Round trip of tile.view: 2-d window, a squeezed row, a fully squeezed (rank-0) element.
// RUN: tessera-opt %s | FileCheck %s
// RUN: tessera-opt %s | tessera-opt | FileCheck %s
// RUN: tessera-opt %s -o %t && tessera-opt %t | diff %t -

!g = memref<?x?xf32, strided<[?, ?], offset: ?>>

// CHECK-LABEL: func.func @views
// CHECK-SAME: (%[[X:.*]]: memref<?x?xf32, strided<[?, ?], offset: ?>>, %[[I:.*]]: index, %[[J:.*]]: index)
// CHECK: "tile.view"(%[[X]], %[[I]], %[[J]]) {sizes = array<i64: 32, 16>, squeeze = array<i64: 0, 0>}
// CHECK-SAME: : (memref<?x?xf32, strided<[?, ?], offset: ?>>, index, index) -> !tile.window<array<i64: 32, 16>, f32>
// CHECK: "tile.view"(%[[X]], %[[I]], %[[J]]) {sizes = array<i64: 1, 64>, squeeze = array<i64: 1, 0>}
// CHECK-SAME: -> !tile.window<array<i64: 64>, f32>
// CHECK: "tile.view"(%[[X]], %[[I]], %[[J]]) {sizes = array<i64: 1, 1>, squeeze = array<i64: 1, 1>}
// CHECK-SAME: -> !tile.window<array<i64>, f32>
func.func @views(%x: !g, %i: index, %j: index) attributes {tessera.kernel} {
  %0 = "tile.view"(%x, %i, %j) {sizes = array<i64: 32, 16>, squeeze = array<i64: 0, 0>} : (!g, index, index) -> !tile.window<array<i64: 32, 16>, f32>
  %1 = "tile.view"(%x, %i, %j) {sizes = array<i64: 1, 64>, squeeze = array<i64: 1, 0>} : (!g, index, index) -> !tile.window<array<i64: 64>, f32>
  %2 = "tile.view"(%x, %i, %j) {sizes = array<i64: 1, 1>, squeeze = array<i64: 1, 1>} : (!g, index, index) -> !tile.window<array<i64>, f32>
  return
}
