// Round trip of tile.barrier (also inside scf.for).
// RUN: tessera-opt %s | FileCheck %s
// RUN: tessera-opt %s | tessera-opt | FileCheck %s
// RUN: tessera-opt %s -o %t && tessera-opt %t | diff %t -

// CHECK-LABEL: func.func @sync
// CHECK: "tile.barrier"() : () -> ()
// CHECK: scf.for
// CHECK-NEXT: "tile.barrier"() : () -> ()
func.func @sync(%n: index) attributes {tessera.kernel} {
  "tile.barrier"() : () -> ()
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  scf.for %i = %c0 to %n step %c1 {
    "tile.barrier"() : () -> ()
  }
  return
}
