// Round trip of tile.convert_layout (placed by tessera-place-layout-conversions: a tile leaves the mma layout).
// RUN: tessera-opt %s | FileCheck %s
// RUN: tessera-opt %s | tessera-opt | FileCheck %s
// RUN: tessera-opt %s -o %t && tessera-opt %t | diff %t -

// CHECK-LABEL: func.func @convert
// CHECK: "tile.convert_layout"(%{{.*}}) {layout = "blocked"} : (tensor<64x32xf32>) -> tensor<64x32xf32>
func.func @convert(%x: tensor<64x32xf32>) {
  %0 = "tile.convert_layout"(%x) {layout = "blocked"} : (tensor<64x32xf32>) -> tensor<64x32xf32>
  return
}
