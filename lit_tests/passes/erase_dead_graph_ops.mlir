// RUN: tessera-opt %s -p 'tessera-erase-dead-graph-ops' | FileCheck %s
// RUN: tessera-opt %s -p 'canonicalize' | FileCheck %s --check-prefix=CANON

!t = tensor<4x8xf32>
!w = tensor<8x8xf32>
// An unused chain (gemm → softmax → add) is erased from its last op back; what the return reads stays.
// canonicalize alone keeps the ts ops (IRDL ops are not known to be side-effect free).
// CHECK-LABEL: func.func @dead_chain
// CHECK-NEXT: %[[G:.*]] = "ts.gating_function"(%arg0, %arg1)
// CHECK-NEXT: return %[[G]]
// CANON-LABEL: func.func @dead_chain
// CANON: ts.gemm
// CANON: ts.softmax
func.func @dead_chain(%x: !t, %w: !w) -> !t {
  %g = "ts.gating_function"(%x, %w) {distance = 1.0 : f64} : (!t, !w) -> !t
  %m = "ts.gemm"(%x, %w) : (!t, !w) -> !t
  %s = "ts.softmax"(%m) {axis = 1 : i64} : (!t) -> !t
  %a = arith.addf %s, %x : !t
  return %g : !t
}
