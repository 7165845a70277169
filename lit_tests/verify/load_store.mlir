// tile.load / tile.store verifier: sources and destinations are windows or shared buffers, value
// types follow the window (bare element for rank 0), masks are i1 of the value's shape.
// RUN: tessera-opt %s --split-input-file --verify-diagnostics

!g = memref<?xf32, strided<[?], offset: ?>>
!w = !tile.window<array<i64: 16>, f32>
func.func @load_shape(%x: !g, %i: index) {
  %w = "tile.view"(%x, %i) {sizes = array<i64: 16>, squeeze = array<i64: 0>} : (!g, index) -> !w
  // expected-error @+1 {{'tile.load' op result type tensor<8xf32> does not match the source: expected tensor<16xf32>}}
  %0 = "tile.load"(%w) {operandSegmentSizes = array<i32: 1, 0, 0>} : (!w) -> tensor<8xf32>
  return
}

// -----
!g = memref<?xf32, strided<[?], offset: ?>>
!w = !tile.window<array<i64: 16>, f32>
func.func @load_elem(%x: !g, %i: index) {
  %w = "tile.view"(%x, %i) {sizes = array<i64: 16>, squeeze = array<i64: 0>} : (!g, index) -> !w
  // expected-error @+1 {{expected tensor<16xf32>}}
  %0 = "tile.load"(%w) {operandSegmentSizes = array<i32: 1, 0, 0>} : (!w) -> tensor<16xf16>
  return
}

// -----
!g = memref<?xf32, strided<[?], offset: ?>>
func.func @load_rank0_is_scalar(%x: !g, %i: index) {
  %e = "tile.view"(%x, %i) {sizes = array<i64: 1>, squeeze = array<i64: 1>} : (!g, index) -> !tile.window<array<i64>, f32>
  // expected-error @+1 {{result type tensor<f32> does not match the source: expected f32}}
  %0 = "tile.load"(%e) {operandSegmentSizes = array<i32: 1, 0, 0>} : (!tile.window<array<i64>, f32>) -> tensor<f32>
  return
}

// -----
!g = memref<?xf32, strided<[?], offset: ?>>
!w = !tile.window<array<i64: 16>, f32>
func.func @load_mask_shape(%x: !g, %i: index, %m: tensor<8xi1>) {
  %w = "tile.view"(%x, %i) {sizes = array<i64: 16>, squeeze = array<i64: 0>} : (!g, index) -> !w
  // expected-error @+1 {{'tile.load' op mask must be tensor<16xi1> (i1 of the value's shape), got tensor<8xi1>}}
  %0 = "tile.load"(%w, %m) {operandSegmentSizes = array<i32: 1, 1, 0>} : (!w, tensor<8xi1>) -> tensor<16xf32>
  return
}

// -----
!g = memref<?xf32, strided<[?], offset: ?>>
!w = !tile.window<array<i64: 16>, f32>
func.func @load_mask_type(%x: !g, %i: index, %m: tensor<16xi8>) {
  %w = "tile.view"(%x, %i) {sizes = array<i64: 16>, squeeze = array<i64: 0>} : (!g, index) -> !w
  // expected-error @+1 {{mask must be tensor<16xi1>}}
  %0 = "tile.load"(%w, %m) {operandSegmentSizes = array<i32: 1, 1, 0>} : (!w, tensor<16xi8>) -> tensor<16xf32>
  return
}

// -----
!g = memref<?xf32, strided<[?], offset: ?>>
!w = !tile.window<array<i64: 16>, f32>
func.func @load_other(%x: !g, %i: index, %m: tensor<16xi1>, %o: i32) {
  %w = "tile.view"(%x, %i) {sizes = array<i64: 16>, squeeze = array<i64: 0>} : (!g, index) -> !w
  // expected-error @+1 {{'other' must be tensor<16xf32> or f32, got i32}}
  %0 = "tile.load"(%w, %m, %o) {operandSegmentSizes = array<i32: 1, 1, 1>} : (!w, tensor<16xi1>, i32) -> tensor<16xf32>
  return
}

// -----
func.func @load_global_memref(%x: memref<16xf32>) {
  // expected-error @+1 {{source memref must be in #gpu.address_space<workgroup> (a shared buffer), got memref<16xf32>}}
  %0 = "tile.load"(%x) {operandSegmentSizes = array<i32: 1, 0, 0>} : (memref<16xf32>) -> tensor<16xf32>
  return
}

// -----
func.func @load_dynamic_shared(%x: memref<?xf32, #gpu.address_space<workgroup>>) {
  // expected-error @+1 {{source shared memref must have a static shape}}
  %0 = "tile.load"(%x) {operandSegmentSizes = array<i32: 1, 0, 0>} : (memref<?xf32, #gpu.address_space<workgroup>>) -> tensor<16xf32>
  return
}

// -----
func.func @load_tensor(%x: tensor<16xf32>) {
  // expected-error @+1 {{'tile.load' op source must be a !tile.window or a shared memref, got tensor<16xf32>}}
  %0 = "tile.load"(%x) {operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<16xf32>) -> tensor<16xf32>
  return
}

// -----
func.func @load_shared_shape() {
  %s = "tile.alloc_shared"() {swizzle = "none"} : () -> memref<4x8xf32, #gpu.address_space<workgroup>>
  // expected-error @+1 {{result type tensor<8x4xf32> does not match the source: expected tensor<4x8xf32>}}
  %0 = "tile.load"(%s) {operandSegmentSizes = array<i32: 1, 0, 0>} : (memref<4x8xf32, #gpu.address_space<workgroup>>) -> tensor<8x4xf32>
  return
}

// -----
!g = memref<?x?xf32, strided<[?, ?], offset: ?>>
!w = !tile.window<array<i64: 4, 8>, f32>
func.func @store_shape(%x: !g, %i: index, %v: tensor<8x4xf32>) {
  %w = "tile.view"(%x, %i, %i) {sizes = array<i64: 4, 8>, squeeze = array<i64: 0, 0>} : (!g, index, index) -> !w
  // expected-error @+1 {{'tile.store' op stored value tensor<8x4xf32> does not match the destination: expected tensor<4x8xf32>}}
  "tile.store"(%w, %v) {operandSegmentSizes = array<i32: 1, 1, 0>} : (!w, tensor<8x4xf32>) -> ()
  return
}

// -----
!g = memref<?x?xf32, strided<[?, ?], offset: ?>>
!w = !tile.window<array<i64: 4, 8>, f32>
func.func @store_scalar_into_tile(%x: !g, %i: index, %v: f32) {
  %w = "tile.view"(%x, %i, %i) {sizes = array<i64: 4, 8>, squeeze = array<i64: 0, 0>} : (!g, index, index) -> !w
  // expected-error @+1 {{stored value f32 does not match the destination: expected tensor<4x8xf32>}}
  "tile.store"(%w, %v) {operandSegmentSizes = array<i32: 1, 1, 0>} : (!w, f32) -> ()
  return
}

// -----
!g = memref<?x?xf32, strided<[?, ?], offset: ?>>
!w = !tile.window<array<i64: 4, 8>, f32>
func.func @store_mask(%x: !g, %i: index, %v: tensor<4x8xf32>, %m: tensor<4xi1>) {
  %w = "tile.view"(%x, %i, %i) {sizes = array<i64: 4, 8>, squeeze = array<i64: 0, 0>} : (!g, index, index) -> !w
  // expected-error @+1 {{'tile.store' op mask must be tensor<4x8xi1> (i1 of the value's shape), got tensor<4xi1>}}
  "tile.store"(%w, %v, %m) {operandSegmentSizes = array<i32: 1, 1, 1>} : (!w, tensor<4x8xf32>, tensor<4xi1>) -> ()
  return
}

// -----
func.func @store_shared_shape(%v: tensor<16xf32>) {
  %s = "tile.alloc_shared"() {swizzle = "none"} : () -> memref<32xf32, #gpu.address_space<workgroup>>
  // expected-error @+1 {{stored value tensor<16xf32> does not match the destination: expected tensor<32xf32>}}
  "tile.store"(%s, %v) {operandSegmentSizes = array<i32: 1, 1, 0>} : (memref<32xf32, #gpu.address_space<workgroup>>, tensor<16xf32>) -> ()
  return
}

// -----
func.func @store_into_value(%d: tensor<16xf32>, %v: tensor<16xf32>) {
  // expected-error @+1 {{'tile.store' op destination must be a !tile.window or a shared memref, got tensor<16xf32>}}
  "tile.store"(%d, %v) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<16xf32>, tensor<16xf32>) -> ()
  return
}

// -----
// Without operandSegmentSizes the third operand of tile.store is the mask.
!g = memref<?xf32, strided<[?], offset: ?>>
!w = !tile.window<array<i64: 16>, f32>
func.func @store_mask_no_segments(%x: !g, %i: index, %v: tensor<16xf32>, %m: tensor<16xf32>) {
  %w = "tile.view"(%x, %i) {sizes = array<i64: 16>, squeeze = array<i64: 0>} : (!g, index) -> !w
  // expected-error @+1 {{'tile.store' op mask must be tensor<16xi1> (i1 of the value's shape), got tensor<16xf32>}}
  "tile.store"(%w, %v, %m) : (!w, tensor<16xf32>, tensor<16xf32>) -> ()
  return
}
