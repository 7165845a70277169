// tile.broadcast verifier: NumPy right-aligned broadcasting from the operand shape (a scalar is
// shape []) to the result shape, same element type.
// RUN: tessera-opt %s --split-input-file --verify-diagnostics

func.func @incompatible(%x: tensor<8xf32>) {
  // expected-error @+1 {{'tile.broadcast' op cannot broadcast shape [8] to [8, 16]}}
  %0 = "tile.broadcast"(%x) : (tensor<8xf32>) -> tensor<8x16xf32>
  return
}

// -----
func.func @rank_down(%x: tensor<4x8xf32>) {
  // expected-error @+1 {{cannot broadcast shape [4, 8] to [8]}}
  %0 = "tile.broadcast"(%x) : (tensor<4x8xf32>) -> tensor<8xf32>
  return
}

// -----
func.func @non_one_dim(%x: tensor<2x16xf32>) {
  // expected-error @+1 {{cannot broadcast shape [2, 16] to [8, 16]}}
  %0 = "tile.broadcast"(%x) : (tensor<2x16xf32>) -> tensor<8x16xf32>
  return
}

// -----
func.func @elem(%x: f16) {
  // expected-error @+1 {{'tile.broadcast' op element types differ: operand f16, result f32}}
  %0 = "tile.broadcast"(%x) : (f16) -> tensor<8x16xf32>
  return
}

// -----
func.func @not_a_value(%x: memref<8xf32>) {
  // expected-error @+1 {{operand must be a tile or a scalar, got memref<8xf32>}}
  %0 = "tile.broadcast"(%x) : (memref<8xf32>) -> tensor<8xf32>
  return
}

// -----
func.func @dynamic_result(%x: f32) {
  // expected-error @+1 {{result must have a static shape, got tensor<?xf32>}}
  %0 = "tile.broadcast"(%x) : (f32) -> tensor<?xf32>
  return
}
