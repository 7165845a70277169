// Round trip of tile.arange.
// RUN: tessera-opt %s | FileCheck %s
// RUN: tessera-opt %s | tessera-opt | FileCheck %s
// RUN: tessera-opt %s -o %t && tessera-opt %t | diff %t -

// CHECK-LABEL: func.func @arange
// CHECK: "tile.arange"() {end = 16 : i64, start = 0 : i64} : () -> tensor<16xi32>
// CHECK: "tile.arange"() {end = 12 : i64, start = 4 : i64} : () -> tensor<8xi32>
func.func @arange() {
  %0 = "tile.arange"() {start = 0 : i64, end = 16 : i64} : () -> tensor<16xi32>
  %1 = "tile.arange"() {start = 4 : i64, end = 12 : i64} : () -> tensor<8xi32>
  return
}
