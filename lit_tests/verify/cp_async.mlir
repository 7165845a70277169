// tile.cp_async verifier: the shared destination has the window's shape and element type.
// RUN: tessera-opt %s --split-input-file --verify-diagnostics

!g = memref<?x?xf16, strided<[?, ?], offset: ?>>
!w = !tile.window<array<i64: 64, 32>, f16>
func.func @shape(%x: !g, %i: index) {
  %s = "tile.alloc_shared"() {swizzle = "none"} : () -> memref<32x64xf16, #gpu.address_space<workgroup>>
  %w = "tile.view"(%x, %i, %i) {sizes = array<i64: 64, 32>, squeeze = array<i64: 0, 0>} : (!g, index, index) -> !w
  // expected-error @+1 {{'tile.cp_async' op destination shape [32, 64] does not match the source window shape [64, 32]}}
  "tile.cp_async"(%s, %w) {bypass_l1 = false} : (memref<32x64xf16, #gpu.address_space<workgroup>>, !w) -> ()
  return
}

// -----
!g = memref<?x?xf16, strided<[?, ?], offset: ?>>
!w = !tile.window<array<i64: 64, 32>, f16>
func.func @elem(%x: !g, %i: index) {
  %s = "tile.alloc_shared"() {swizzle = "none"} : () -> memref<64x32xf32, #gpu.address_space<workgroup>>
  %w = "tile.view"(%x, %i, %i) {sizes = array<i64: 64, 32>, squeeze = array<i64: 0, 0>} : (!g, index, index) -> !w
  // expected-error @+1 {{destination element type f32 does not match the source window's f16}}
  "tile.cp_async"(%s, %w) {bypass_l1 = false} : (memref<64x32xf32, #gpu.address_space<workgroup>>, !w) -> ()
  return
}

// -----
!g = memref<?x?xf16, strided<[?, ?], offset: ?>>
!w = !tile.window<array<i64: 64, 32>, f16>
func.func @global_dst(%x: !g, %i: index, %d: memref<64x32xf16>) {
  %w = "tile.view"(%x, %i, %i) {sizes = array<i64: 64, 32>, squeeze = array<i64: 0, 0>} : (!g, index, index) -> !w
  // expected-error @+1 {{destination memref must be in #gpu.address_space<workgroup> (a shared buffer)}}
  "tile.cp_async"(%d, %w) {bypass_l1 = false} : (memref<64x32xf16>, !w) -> ()
  return
}

// -----
!w = !tile.window<array<i64: 64, 32>, f16>
func.func @src_not_view(%w: !w) {
  %s = "tile.alloc_shared"() {swizzle = "none"} : () -> memref<64x32xf16, #gpu.address_space<workgroup>>
  // expected-error @+1 {{source window must be defined by tile.view}}
  "tile.cp_async"(%s, %w) {bypass_l1 = false} : (memref<64x32xf16, #gpu.address_space<workgroup>>, !w) -> ()
  return
}
