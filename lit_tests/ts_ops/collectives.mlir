// RUN: tessera-opt %s | FileCheck %s
// RUN: tessera-opt %s | tessera-opt | FileCheck %s

// Collectives over a mesh axis of 4 ranks (size): the result types carry the shapes (all_gather
// multiplies dim by the size, reduce_scatter divides it).
// CHECK-LABEL: func.func @collectives
// CHECK: "ts.all_reduce"(%{{[a-z0-9]+}}) {axis = "dp", op = "mean", size = 4 : i64} : (tensor<8x6xf64>) -> tensor<8x6xf64>
// CHECK: "ts.all_gather"(%{{[a-z0-9]+}}) {axis = "tp", dim = 1 : i64, size = 4 : i64} : (tensor<8x6xf64>) -> tensor<8x24xf64>
// CHECK: "ts.reduce_scatter"(%{{[a-z0-9]+}}) {axis = "tp", dim = 0 : i64, op = "sum", size = 4 : i64} : (tensor<8x6xf64>) -> tensor<2x6xf64>
// CHECK: "ts.dist_broadcast"(%{{[a-z0-9]+}}) {axis = "dp", size = 4 : i64, src = 2 : i64} : (tensor<8x6xf64>) -> tensor<8x6xf64>
func.func @collectives(%x: tensor<8x6xf64>) {
  %a = "ts.all_reduce"(%x) {axis = "dp", op = "mean", size = 4 : i64} : (tensor<8x6xf64>) -> tensor<8x6xf64>
  %g = "ts.all_gather"(%x) {axis = "tp", dim = 1 : i64, size = 4 : i64} : (tensor<8x6xf64>) -> tensor<8x24xf64>
  %s = "ts.reduce_scatter"(%x) {axis = "tp", dim = 0 : i64, op = "sum", size = 4 : i64} : (tensor<8x6xf64>) -> tensor<2x6xf64>
  %b = "ts.dist_broadcast"(%x) {axis = "dp", src = 2 : i64, size = 4 : i64} : (tensor<8x6xf64>) -> tensor<8x6xf64>
  return
}
