// Violations IRDL itself rejects while parsing (operand kinds, attribute constraints, arity).
// RUN: tessera-opt %s --split-input-file --verify-diagnostics

func.func @reduce_kind(%x: tensor<16xf32>) {
  // expected-error @+1 {{'"avg"' does not satisfy the constraint}}
  %0 = "tile.reduce"(%x) {kind = "avg", axis = 0 : i64} : (tensor<16xf32>) -> f32
  return
}

// -----
func.func @mma_memref(%a: memref<16x16xf16>, %b: tensor<16x16xf16>) {
  // expected-error @+1 {{expected base type 'builtin.tensor' but got 'builtin.memref'}}
  %0 = "tile.mma"(%a, %b) {operandSegmentSizes = array<i32: 1, 1, 0>} : (memref<16x16xf16>, tensor<16x16xf16>) -> tensor<16x16xf32>
  return
}

// -----
func.func @pid_result() {
  // expected-error @+1 {{expected 'index' but got 'i32'}}
  %0 = "tile.program_id"() {axis = 0 : i32} : () -> i32
  return
}

// -----
func.func @arange_attr() {
  // expected-error @+1 {{'tile.arange' op attribute "end" is expected but not provided}}
  %0 = "tile.arange"() {start = 0 : i64} : () -> tensor<16xi32>
  return
}

// -----
func.func @barrier_operands(%i: index) {
  // expected-error @+1 {{op expects exactly 0 operands, but got 1}}
  "tile.barrier"(%i) : (index) -> ()
  return
}

// -----
func.func @window_params() {
  // expected-error @+1 {{expected 2 type arguments, but had 1}}
  %0 = "tile.program_id"() {axis = 0 : i32} : () -> !tile.window<f32>
  return
}
