// Round trip of tile.num_programs.
// RUN: tessera-opt %s | FileCheck %s
// RUN: tessera-opt %s | tessera-opt | FileCheck %s
// RUN: tessera-opt %s -o %t && tessera-opt %t | diff %t -

// CHECK-LABEL: func.func @grid_size
// CHECK: %[[X:.*]] = "tile.num_programs"() {axis = 0 : i32} : () -> index
// CHECK: %[[Z:.*]] = "tile.num_programs"() {axis = 2 : i32} : () -> index
// CHECK: %[[S:.*]] = arith.addi %[[X]], %[[Z]] : index
// CHECK: return %[[S]] : index
func.func @grid_size() -> index {
  %x = "tile.num_programs"() {axis = 0 : i32} : () -> index
  %z = "tile.num_programs"() {axis = 2 : i32} : () -> index
  %s = arith.addi %x, %z : index
  return %s : index
}
