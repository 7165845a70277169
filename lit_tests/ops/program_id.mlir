// Round trip of tile.program_id (generic form; IRDL ops have no custom syntax).
// RUN: tessera-opt %s | FileCheck %s
// RUN: tessera-opt %s | tessera-opt | FileCheck %s
// RUN: tessera-opt %s -o %t && tessera-opt %t | diff %t -

// CHECK-LABEL: func.func @program_ids
// CHECK: %[[X:.*]] = "tile.program_id"() {axis = 0 : i32} : () -> index
// CHECK: %[[Y:.*]] = "tile.program_id"() {axis = 1 : i32} : () -> index
// CHECK: %[[Z:.*]] = "tile.program_id"() {axis = 2 : i32} : () -> index
// CHECK: return %[[X]], %[[Y]], %[[Z]] : index, index, index
func.func @program_ids() -> (index, index, index) {
  %x = "tile.program_id"() {axis = 0 : i32} : () -> index
  %y = "tile.program_id"() {axis = 1 : i32} : () -> index
  %z = "tile.program_id"() {axis = 2 : i32} : () -> index
  return %x, %y, %z : index, index, index
}
