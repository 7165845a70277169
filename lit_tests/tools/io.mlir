// Input from stdin ('-' or nothing), output to -o, `python -m tessera.tools.opt`, and locations
// with --mlir-print-debuginfo naming the input file and its real line numbers (also in a later
// --split-input-file chunk and for a chunk holding several top-level ops).
// RUN: tessera-opt < %s | FileCheck %s
// RUN: tessera-opt - < %s | FileCheck %s
// RUN: tessera-opt %s -o %t && FileCheck %s --input-file %t
// RUN: %python -m tessera.tools.opt %s | FileCheck %s
// RUN: tessera-opt %s --split-input-file --mlir-print-debuginfo | FileCheck %s --check-prefix=LOC
// RUN: tessera-opt %s --mlir-print-op-generic | FileCheck %s --check-prefix=GENERIC

// CHECK: func.func @first
// CHECK: "tile.program_id"() {axis = 0 : i32} : () -> index
// CHECK: func.func @second
// GENERIC: "func.func"() <{function_type = () -> index, sym_name = "first"}>
// GENERIC: "func.return"

// LOC: "tile.program_id"() {axis = 0 : i32} : () -> index loc(#[[L1:loc[0-9]*]])
// LOC: #[[L1]] = loc("{{.*}}io.mlir":[[# @LINE + 2]]:8)
func.func @first() -> index {
  %0 = "tile.program_id"() {axis = 0 : i32} : () -> index
  return %0 : index
}

// -----
// LOC: // -----
// LOC: "tile.num_programs"() {axis = 1 : i32} : () -> index loc(#[[L2:loc[0-9]*]])
// LOC: #[[L2]] = loc("{{.*}}io.mlir":[[# @LINE + 2]]:8)
func.func @second() -> index {
  %0 = "tile.num_programs"() {axis = 1 : i32} : () -> index
  return %0 : index
}
func.func @third() {
  return
}
