// Round trip of tile.alloc_shared (with and without a swizzle).
// RUN: tessera-opt %s | FileCheck %s
// RUN: tessera-opt %s | tessera-opt | FileCheck %s
// RUN: tessera-opt %s -o %t && tessera-opt %t | diff %t -

// CHECK-LABEL: func.func @alloc
// CHECK: "tile.alloc_shared"() {swizzle = "none"} : () -> memref<64x32xf16, #gpu.address_space<workgroup>>
// CHECK: "tile.alloc_shared"() {swizzle = "128B"} : () -> memref<128xf32, #gpu.address_space<workgroup>>
func.func @alloc() attributes {tessera.kernel} {
  %a = "tile.alloc_shared"() {swizzle = "none"} : () -> memref<64x32xf16, #gpu.address_space<workgroup>>
  %b = "tile.alloc_shared"() {swizzle = "128B"} : () -> memref<128xf32, #gpu.address_space<workgroup>>
  return
}
