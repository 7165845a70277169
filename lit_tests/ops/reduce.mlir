// Round trip of tile.reduce: sum/max/min, 2-d -> 1-d and 1-d -> scalar.
// RUN: tessera-opt %s | FileCheck %s
// RUN: tessera-opt %s | tessera-opt | FileCheck %s
// RUN: tessera-opt %s -o %t && tessera-opt %t | diff %t -

// CHECK-LABEL: func.func @reduce
// CHECK: "tile.reduce"(%{{.*}}) {axis = 1 : i64, kind = "sum"} : (tensor<8x16xf32>) -> tensor<8xf32>
// CHECK: "tile.reduce"(%{{.*}}) {axis = 0 : i64, kind = "max"} : (tensor<8x16xf32>) -> tensor<16xf32>
// CHECK: "tile.reduce"(%{{.*}}) {axis = 0 : i64, kind = "min"} : (tensor<16xi32>) -> i32
func.func @reduce(%x: tensor<8x16xf32>, %y: tensor<16xi32>) -> i32 {
  %0 = "tile.reduce"(%x) {kind = "sum", axis = 1 : i64} : (tensor<8x16xf32>) -> tensor<8xf32>
  %1 = "tile.reduce"(%x) {kind = "max", axis = 0 : i64} : (tensor<8x16xf32>) -> tensor<16xf32>
  %2 = "tile.reduce"(%y) {kind = "min", axis = 0 : i64} : (tensor<16xi32>) -> i32
  return %2 : i32
}
