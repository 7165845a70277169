// --verify-diagnostics reports expected diagnostics that were not produced and diagnostics that
// were not expected (wrong line, wrong text, wrong severity), and exits 1.
// RUN: not tessera-opt %s --split-input-file --verify-diagnostics 2>&1 | FileCheck %s

// CHECK: verify_diagnostics_mismatch.mlir:[[# @LINE + 2]]: error: expected error "axis must be 0, 1 or 2" was not produced
func.func @missing() {
  // expected-error@+1 {{axis must be 0, 1 or 2}}
  %0 = "tile.program_id"() {axis = 0 : i32} : () -> index
  return
}

// -----
// CHECK: verify_diagnostics_mismatch.mlir:[[# @LINE + 2]]:8: error: unexpected error: 'tile.program_id' op axis must be 0, 1 or 2, got 3
func.func @unexpected() {
  %0 = "tile.program_id"() {axis = 3 : i32} : () -> index
  return
}

// -----
func.func @wrong_line() {
  // CHECK: verify_diagnostics_mismatch.mlir:[[# @LINE + 3]]:8: error: unexpected error: 'tile.program_id' op axis must be 0, 1 or 2, got 3
  // CHECK: verify_diagnostics_mismatch.mlir:[[# @LINE + 1]]: error: expected error "got 3" was not produced
  // expected-error@+2 {{got 3}}
  %0 = "tile.program_id"() {axis = 3 : i32} : () -> index
  return
}

// -----
func.func @wrong_kind() {
  // CHECK: error: unexpected error: 'tile.program_id' op axis must be 0, 1 or 2, got 3
  // CHECK: error: expected warning "got 3" was not produced
  // expected-warning@+1 {{got 3}}
  %0 = "tile.program_id"() {axis = 3 : i32} : () -> index
  return
}
// CHECK-NOT: Traceback
