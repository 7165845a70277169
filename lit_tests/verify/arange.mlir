// tile.arange verifier: end > start, result tensor<(end - start)xi32>.
// RUN: tessera-opt %s --split-input-file --verify-diagnostics

func.func @empty() {
  // expected-error @+1 {{'tile.arange' op end (4) must be greater than start (4)}}
  %0 = "tile.arange"() {start = 4 : i64, end = 4 : i64} : () -> tensor<0xi32>
  return
}

// -----
func.func @reversed() {
  // expected-error @+1 {{end (0) must be greater than start (8)}}
  %0 = "tile.arange"() {start = 8 : i64, end = 0 : i64} : () -> tensor<8xi32>
  return
}

// -----
func.func @length() {
  // expected-error @+1 {{'tile.arange' op result must be tensor<12xi32>, got tensor<16xi32>}}
  %0 = "tile.arange"() {start = 4 : i64, end = 16 : i64} : () -> tensor<16xi32>
  return
}

// -----
func.func @elem() {
  // expected-error @+1 {{result must be tensor<16xi32>, got tensor<16xi64>}}
  %0 = "tile.arange"() {start = 0 : i64, end = 16 : i64} : () -> tensor<16xi64>
  return
}
