// tile.convert_layout verifier: the result has the operand's type; the only target layout is "blocked".
// RUN: tessera-opt %s --split-input-file --verify-diagnostics

func.func @type_changes(%x: tensor<8x8xf32>) {
  // expected-error @+1 {{'tile.convert_layout' op result type tensor<8x8xf16> must be the operand's, tensor<8x8xf32>}}
  %0 = "tile.convert_layout"(%x) {layout = "blocked"} : (tensor<8x8xf32>) -> tensor<8x8xf16>
  return
}

// -----
func.func @unknown_layout(%x: tensor<8x8xf32>) {
  // expected-error @+1 {{layout must be "blocked"}}
  %0 = "tile.convert_layout"(%x) {layout = "mma"} : (tensor<8x8xf32>) -> tensor<8x8xf32>
  return
}
