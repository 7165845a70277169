// Round trip of tile.cp_wait_group.
// RUN: tessera-opt %s | FileCheck %s
// RUN: tessera-opt %s | tessera-opt | FileCheck %s
// RUN: tessera-opt %s -o %t && tessera-opt %t | diff %t -

// CHECK-LABEL: func.func @wait
// CHECK: "tile.cp_wait_group"() {pending = 0 : i32} : () -> ()
// CHECK: "tile.cp_wait_group"() {pending = 2 : i32} : () -> ()
func.func @wait() attributes {tessera.kernel} {
  "tile.cp_wait_group"() {pending = 0 : i32} : () -> ()
  "tile.cp_wait_group"() {pending = 2 : i32} : () -> ()
  return
}
