// RUN: tessera-opt %s | FileCheck %s
// RUN: tessera-opt %s | tessera-opt | FileCheck %s

// CHECK-LABEL: func.func @embedding
// CHECK: "ts.embedding"(%{{[a-z0-9]+}}, %{{[a-z0-9]+}}) : (tensor<2x5xi32>, tensor<100x16xbf16>) -> tensor<2x5x16xbf16>
func.func @embedding(%ids: tensor<2x5xi32>, %table: tensor<100x16xbf16>) {
  %r = "ts.embedding"(%ids, %table) : (tensor<2x5xi32>, tensor<100x16xbf16>) -> tensor<2x5x16xbf16>
  return
}
