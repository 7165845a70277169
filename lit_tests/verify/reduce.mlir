// tile.reduce verifier: axis within the rank, result = input shape minus the axis (a scalar for a
// 1-d input), same element type, kind sum/max/min (the kind is also an IRDL constraint: irdl.mlir).
// RUN: tessera-opt %s --split-input-file --verify-diagnostics

func.func @axis_range(%x: tensor<8x16xf32>) {
  // expected-error @+1 {{'tile.reduce' op axis 2 is out of range for an operand of rank 2}}
  %0 = "tile.reduce"(%x) {kind = "sum", axis = 2 : i64} : (tensor<8x16xf32>) -> tensor<8xf32>
  return
}

// -----
func.func @negative_axis(%x: tensor<8x16xf32>) {
  // expected-error @+1 {{axis -1 is out of range for an operand of rank 2}}
  %0 = "tile.reduce"(%x) {kind = "sum", axis = -1 : i64} : (tensor<8x16xf32>) -> tensor<8xf32>
  return
}

// -----
func.func @result_shape(%x: tensor<8x16xf32>) {
  // expected-error @+1 {{'tile.reduce' op result must be tensor<16xf32>, got tensor<8xf32>}}
  %0 = "tile.reduce"(%x) {kind = "max", axis = 0 : i64} : (tensor<8x16xf32>) -> tensor<8xf32>
  return
}

// -----
func.func @result_scalar(%x: tensor<16xf32>) {
  // expected-error @+1 {{result must be f32, got tensor<1xf32>}}
  %0 = "tile.reduce"(%x) {kind = "min", axis = 0 : i64} : (tensor<16xf32>) -> tensor<1xf32>
  return
}

// -----
func.func @result_elem(%x: tensor<16xi32>) {
  // expected-error @+1 {{result must be i32, got f32}}
  %0 = "tile.reduce"(%x) {kind = "sum", axis = 0 : i64} : (tensor<16xi32>) -> f32
  return
}

// -----
func.func @elem_kind(%x: tensor<16xcomplex<f32>>) {
  // expected-error @+1 {{operand element type must be an integer or float type, got complex<f32>}}
  %0 = "tile.reduce"(%x) {kind = "sum", axis = 0 : i64} : (tensor<16xcomplex<f32>>) -> complex<f32>
  return
}
