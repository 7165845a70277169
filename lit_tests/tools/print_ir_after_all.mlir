// --print-ir-after-all prints the module to stderr after every pass, tessera and upstream alike,
// with mlir-opt's header; the final module still goes to stdout (-o here).
// RUN: tessera-opt %s -p 'tessera-lower-tile-to-cpu,canonicalize,cse' --print-ir-after-all -o %t 2>&1 | FileCheck %s
// RUN: FileCheck %s --input-file %t --check-prefix=OUT

// CHECK: // -----// IR Dump After tessera-lower-tile-to-cpu //----- //
// CHECK-NEXT: module {
// CHECK: func.func private @k(
// CHECK: func.func @k_grid(
// CHECK: // -----// IR Dump After canonicalize //----- //
// CHECK-NEXT: module {
// CHECK: // -----// IR Dump After cse //----- //
// CHECK-NEXT: module {
// CHECK-NOT: IR Dump After

// OUT-NOT: IR Dump
// OUT: func.func private @k(
// OUT: func.func @k_grid(
func.func @k(%n: index) -> () attributes {tessera.kernel} {
  %pid = "tile.program_id"() {axis = 0 : i32} : () -> index
  "tile.barrier"() : () -> ()
  return
}
