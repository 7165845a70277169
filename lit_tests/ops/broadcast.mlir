// Round trip of tile.broadcast: scalar -> tile, 1-d -> 2-d, size-1 dim expansion.
// RUN: tessera-opt %s | FileCheck %s
// RUN: tessera-opt %s | tessera-opt | FileCheck %s
// RUN: tessera-opt %s -o %t && tessera-opt %t | diff %t -

// CHECK-LABEL: func.func @broadcast
// CHECK: "tile.broadcast"(%{{.*}}) : (f32) -> tensor<8x16xf32>
// CHECK: "tile.broadcast"(%{{.*}}) : (tensor<16xf32>) -> tensor<8x16xf32>
// CHECK: "tile.broadcast"(%{{.*}}) : (tensor<8x1xf32>) -> tensor<8x16xf32>
func.func @broadcast(%s: f32, %r: tensor<16xf32>, %c: tensor<8x1xf32>) {
  %0 = "tile.broadcast"(%s) : (f32) -> tensor<8x16xf32>
  %1 = "tile.broadcast"(%r) : (tensor<16xf32>) -> tensor<8x16xf32>
  %2 = "tile.broadcast"(%c) : (tensor<8x1xf32>) -> tensor<8x16xf32>
  return
}
