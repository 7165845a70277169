// Round trip of tile.list_get (element i of a list[tile.Tensor] parameter, read from its table).
// RUN: tessera-opt %s | FileCheck %s
// RUN: tessera-opt %s | tessera-opt | FileCheck %s
// RUN: tessera-opt %s -o %t && tessera-opt %t | diff %t -

// CHECK-LABEL: func.func @element
// CHECK: "tile.list_get"(%{{.*}}, %{{.*}}) : (memref<3x5xi64, strided<[?, ?], offset: ?>>, index) -> memref<?x?xf32, strided<[?, ?], offset: ?>>
func.func @element(%xs: memref<3x5xi64, strided<[?, ?], offset: ?>>, %i: index) {
  %0 = "tile.list_get"(%xs, %i) : (memref<3x5xi64, strided<[?, ?], offset: ?>>, index) -> memref<?x?xf32, strided<[?, ?], offset: ?>>
  return
}
