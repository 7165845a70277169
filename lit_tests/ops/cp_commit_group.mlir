// Round trip of tile.cp_commit_group.
// RUN: tessera-opt %s | FileCheck %s
// RUN: tessera-opt %s | tessera-opt | FileCheck %s
// RUN: tessera-opt %s -o %t && tessera-opt %t | diff %t -

// CHECK-LABEL: func.func @commit
// CHECK: "tile.cp_commit_group"() : () -> ()
// CHECK-NEXT: "tile.cp_commit_group"() : () -> ()
// CHECK-NEXT: return
func.func @commit() attributes {tessera.kernel} {
  "tile.cp_commit_group"() : () -> ()
  "tile.cp_commit_group"() : () -> ()
  return
}
