// RUN: tessera-opt %s -p tessera-lower-graph-to-tile | FileCheck %s

// Collectives between elementwise ops: the plan runs them as host steps (tessera.dist calls), so they
// stay in the graph function and get no kernel; the elementwise group between them gets one. Lowering
// needs no mesh (one is looked up when the plan runs).
// CHECK: func.func @f
// CHECK-SAME: tessera.kernels = ["elementwise_{{[0-9a-f]+}}"]
// CHECK: "ts.all_reduce"
// CHECK: "ts.all_gather"
// CHECK: func.func @elementwise_{{[0-9a-f]+}}
// CHECK-SAME: tessera.kernel
func.func @f(%x: tensor<4x8xf32>) -> tensor<4x16xf32> attributes {tessera.function} {
  %a = "ts.all_reduce"(%x) {axis = "dp", op = "sum", size = 2 : i64} : (tensor<4x8xf32>) -> tensor<4x8xf32>
  %b = arith.addf %a, %x : tensor<4x8xf32>
  %g = "ts.all_gather"(%b) {axis = "dp", dim = 1 : i64, size = 2 : i64} : (tensor<4x8xf32>) -> tensor<4x16xf32>
  return %g : tensor<4x16xf32>
}
