// The ts ops' attribute kinds that IRDL does not constrain (tessera/ir/verify_ts.py): dense arrays of
// the right element type, integers of at most 64 bits (wider ones abort the Python bindings).
// RUN: tessera-opt %s --split-input-file --verify-diagnostics

func.func @perm_kind(%x: tensor<2x4xf32>) {
  // expected-error @+1 {{'ts.transpose' op attribute 'perm' must be an array<i64: ...>, got array<i32: 1, 0>}}
  %r = "ts.transpose"(%x) {perm = array<i32: 1, 0>} : (tensor<2x4xf32>) -> tensor<4x2xf32>
  return
}

// -----
func.func @distances_kind(%t: tensor<8x16xf32>, %s: tensor<8x16xf32>, %w: tensor<16x16xf32>, %c: f32) {
  // expected-error @+1 {{'ts.fused_delta_gating' op attribute 'distances' must be an array<f64: ...>, got another kind of array}}
  %f = "ts.fused_delta_gating"(%t, %s, %w, %c) {distances = array<bf16: 1.0>, operandSegmentSizes = array<i32: 1, 1, 1, 1, 0>, sparse = false} : (tensor<8x16xf32>, tensor<8x16xf32>, tensor<16x16xf32>, f32) -> tensor<8x16xf32>
  return
}

// -----
func.func @wide_axis(%x: tensor<8x16xf32>) {
  // expected-error @+1 {{'ts.softmax' op attribute 'axis' must be an integer of at most 64 bits, got 1 : i128}}
  %r = "ts.softmax"(%x) {axis = 1 : i128} : (tensor<8x16xf32>) -> tensor<8x16xf32>
  return
}
