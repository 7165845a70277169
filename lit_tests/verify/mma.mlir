// tile.mma verifier: a is MxK, b is KxN (2-d float tiles of one element type), result MxN f32,
// optional accumulator of the result type.
// RUN: tessera-opt %s --split-input-file --verify-diagnostics

func.func @inner_dims(%a: tensor<16x32xf16>, %b: tensor<16x8xf16>) {
  // expected-error @+1 {{'tile.mma' op inner dims differ: a is 16x32, b is 16x8}}
  %0 = "tile.mma"(%a, %b) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<16x32xf16>, tensor<16x8xf16>) -> tensor<16x8xf32>
  return
}

// -----
func.func @rank(%a: tensor<16xf16>, %b: tensor<16x8xf16>) {
  // expected-error @+1 {{a and b must be 2-d tiles, got tensor<16xf16> and tensor<16x8xf16>}}
  %0 = "tile.mma"(%a, %b) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<16xf16>, tensor<16x8xf16>) -> tensor<16x8xf32>
  return
}

// -----
func.func @result_shape(%a: tensor<16x32xf16>, %b: tensor<32x8xf16>) {
  // expected-error @+1 {{result must be tensor<16x8xf32>, got tensor<8x16xf32>}}
  %0 = "tile.mma"(%a, %b) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<16x32xf16>, tensor<32x8xf16>) -> tensor<8x16xf32>
  return
}

// -----
func.func @result_f32(%a: tensor<16x32xf16>, %b: tensor<32x8xf16>) {
  // expected-error @+1 {{result must be tensor<16x8xf32>, got tensor<16x8xf16>}}
  %0 = "tile.mma"(%a, %b) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<16x32xf16>, tensor<32x8xf16>) -> tensor<16x8xf16>
  return
}

// -----
func.func @acc(%a: tensor<16x32xf16>, %b: tensor<32x8xf16>, %c: tensor<16x8xf16>) {
  // expected-error @+1 {{accumulator must be tensor<16x8xf32> (the result type), got tensor<16x8xf16>}}
  %0 = "tile.mma"(%a, %b, %c) {operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<16x32xf16>, tensor<32x8xf16>, tensor<16x8xf16>) -> tensor<16x8xf32>
  return
}

// -----
func.func @mixed_elems(%a: tensor<16x32xf16>, %b: tensor<32x8xbf16>) {
  // expected-error @+1 {{a and b must have the same element type, got f16 and bf16}}
  %0 = "tile.mma"(%a, %b) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<16x32xf16>, tensor<32x8xbf16>) -> tensor<16x8xf32>
  return
}

// -----
func.func @int_operands(%a: tensor<16x32xi8>, %b: tensor<32x8xi8>) {
  // expected-error @+1 {{a and b must be float tiles, got i8}}
  %0 = "tile.mma"(%a, %b) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<16x32xi8>, tensor<32x8xi8>) -> tensor<16x8xf32>
  return
}

// -----
func.func @dynamic(%a: tensor<?x32xf16>, %b: tensor<32x8xf16>) {
  // expected-error @+1 {{a must have a static shape, got tensor<?x32xf16>}}
  %0 = "tile.mma"(%a, %b) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<?x32xf16>, tensor<32x8xf16>) -> tensor<16x8xf32>
  return
}

// -----
// Without operandSegmentSizes the third operand is the accumulator.
func.func @acc_no_segments(%a: tensor<16x32xf16>, %b: tensor<32x8xf16>, %c: tensor<16x8xf16>) {
  // expected-error @+1 {{accumulator must be tensor<16x8xf32> (the result type), got tensor<16x8xf16>}}
  %0 = "tile.mma"(%a, %b, %c) : (tensor<16x32xf16>, tensor<32x8xf16>, tensor<16x8xf16>) -> tensor<16x8xf32>
  return
}
