// The collectives' attributes and result types (tessera/ir/verify_ts.py): all_gather multiplies dim by
// the axis size, reduce_scatter divides it (evenly), src is an axis rank.
// RUN: tessera-opt %s --split-input-file --verify-diagnostics

func.func @gather_shape(%x: tensor<8x6xf32>) {
  // expected-error @+1 {{'ts.all_gather' op result type tensor<8x6xf32> must be tensor<8x24xf32> (from the operand tensor<8x6xf32> over 4 ranks)}}
  %r = "ts.all_gather"(%x) {axis = "tp", dim = 1 : i64, size = 4 : i64} : (tensor<8x6xf32>) -> tensor<8x6xf32>
  return
}

// -----
func.func @scatter_uneven(%x: tensor<6x6xf32>) {
  // expected-error @+1 {{'ts.reduce_scatter' op dim 0 of the operand (6) does not split into 4 equal parts}}
  %r = "ts.reduce_scatter"(%x) {axis = "tp", dim = 0 : i64, op = "sum", size = 4 : i64} : (tensor<6x6xf32>) -> tensor<1x6xf32>
  return
}

// -----
func.func @broadcast_src(%x: tensor<8x6xf32>) {
  // expected-error @+1 {{'ts.dist_broadcast' op attribute 'src' (4) must be an axis rank in 0..3}}
  %r = "ts.dist_broadcast"(%x) {axis = "dp", src = 4 : i64, size = 4 : i64} : (tensor<8x6xf32>) -> tensor<8x6xf32>
  return
}

// -----
func.func @reduce_kind(%x: tensor<8x6xf32>) {
  // expected-error @+1 {{}}
  %r = "ts.all_reduce"(%x) {axis = "dp", op = "prod", size = 4 : i64} : (tensor<8x6xf32>) -> tensor<8x6xf32>
  return
}
