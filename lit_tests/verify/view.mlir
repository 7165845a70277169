// tile.view verifier: offsets/sizes/squeeze per base dim, squeezed dims of size 1, result window
// shape = non-squeezed sizes, element types, and where a window may be used.
// RUN: tessera-opt %s --split-input-file --verify-diagnostics

!g = memref<?x?xf32, strided<[?, ?], offset: ?>>
func.func @too_few_offsets(%x: !g, %i: index) {
  // expected-error @+1 {{'tile.view' op expects 2 offsets (the base memref's rank), got 1}}
  %0 = "tile.view"(%x, %i) {sizes = array<i64: 4, 4>, squeeze = array<i64: 0, 0>} : (!g, index) -> !tile.window<array<i64: 4, 4>, f32>
  return
}

// -----
!g = memref<?x?xf32, strided<[?, ?], offset: ?>>
func.func @sizes_rank(%x: !g, %i: index) {
  // expected-error @+1 {{sizes (1) and squeeze (2) must have one entry per base dim (2)}}
  %0 = "tile.view"(%x, %i, %i) {sizes = array<i64: 4>, squeeze = array<i64: 0, 0>} : (!g, index, index) -> !tile.window<array<i64: 4>, f32>
  return
}

// -----
!g = memref<?x?xf32, strided<[?, ?], offset: ?>>
func.func @squeeze_rank(%x: !g, %i: index) {
  // expected-error @+1 {{sizes (2) and squeeze (1) must have one entry per base dim (2)}}
  %0 = "tile.view"(%x, %i, %i) {sizes = array<i64: 4, 4>, squeeze = array<i64: 0>} : (!g, index, index) -> !tile.window<array<i64: 4, 4>, f32>
  return
}

// -----
!g = memref<?x?xf32, strided<[?, ?], offset: ?>>
func.func @squeezed_not_one(%x: !g, %i: index) {
  // expected-error @+1 {{squeezed dim 0 must have size 1, got 4}}
  %0 = "tile.view"(%x, %i, %i) {sizes = array<i64: 4, 8>, squeeze = array<i64: 1, 0>} : (!g, index, index) -> !tile.window<array<i64: 8>, f32>
  return
}

// -----
!g = memref<?x?xf32, strided<[?, ?], offset: ?>>
func.func @result_shape(%x: !g, %i: index) {
  // expected-error @+1 {{result window shape [1, 8] does not match the non-squeezed sizes [8]}}
  %0 = "tile.view"(%x, %i, %i) {sizes = array<i64: 1, 8>, squeeze = array<i64: 1, 0>} : (!g, index, index) -> !tile.window<array<i64: 1, 8>, f32>
  return
}

// -----
!g = memref<?x?xf32, strided<[?, ?], offset: ?>>
func.func @result_elem(%x: !g, %i: index) {
  // expected-error @+1 {{result element type f16 does not match the base element type f32}}
  %0 = "tile.view"(%x, %i, %i) {sizes = array<i64: 4, 8>, squeeze = array<i64: 0, 0>} : (!g, index, index) -> !tile.window<array<i64: 4, 8>, f16>
  return
}

// -----
!g = memref<?x?xf32, strided<[?, ?], offset: ?>>
func.func @non_positive_size(%x: !g, %i: index) {
  // expected-error @+1 {{sizes must be positive, got [0, 8]}}
  %0 = "tile.view"(%x, %i, %i) {sizes = array<i64: 0, 8>, squeeze = array<i64: 0, 0>} : (!g, index, index) -> !tile.window<array<i64: 8>, f32>
  return
}

// -----
!g = memref<?x?xf32, strided<[?, ?], offset: ?>>
func.func @squeeze_values(%x: !g, %i: index) {
  // expected-error @+1 {{squeeze entries must be 0 or 1, got [0, 2]}}
  %0 = "tile.view"(%x, %i, %i) {sizes = array<i64: 4, 1>, squeeze = array<i64: 0, 2>} : (!g, index, index) -> !tile.window<array<i64: 4>, f32>
  return
}

// -----
!g = memref<?x?xf32, strided<[?, ?], offset: ?>>
func.func @sizes_not_i64(%x: !g, %i: index) {
  // expected-error @+1 {{attribute 'sizes' must be an array<i64: ...>, got array<i32: 4, 8>}}
  %0 = "tile.view"(%x, %i, %i) {sizes = array<i32: 4, 8>, squeeze = array<i64: 0, 0>} : (!g, index, index) -> !tile.window<array<i64: 4, 8>, f32>
  return
}

// -----
// A window is a compile-time descriptor: it may only feed tile.load/store/cp_async (lowerings erase
// the view after rewriting those; any other use would leave a dangling value).
!g = memref<?xf32, strided<[?], offset: ?>>
!w = !tile.window<array<i64: 4>, f32>
func.func private @sink(!w)
func.func @escaping_window(%x: !g, %i: index) {
  // expected-error @+1 {{result may only be used as the window of tile.load/tile.store/tile.cp_async, not by 'func.call'}}
  %w = "tile.view"(%x, %i) {sizes = array<i64: 4>, squeeze = array<i64: 0>} : (!g, index) -> !w
  func.call @sink(%w) : (!w) -> ()
  return
}

// -----
!w = !tile.window<array<i64: 4>, f32>
func.func @window_argument(%w: !w) {
  // expected-error @+1 {{'tile.load' op source window must be defined by tile.view}}
  %0 = "tile.load"(%w) {operandSegmentSizes = array<i32: 1, 0, 0>} : (!w) -> tensor<4xf32>
  return
}

// -----
func.func @window_shape_type(%w: !tile.window<array<i32: 4>, f32>) {
  // expected-error @+1 {{window type !tile.window<array<i32: 4>, f32> must have an array<i64: ...> shape}}
  %0 = "tile.load"(%w) {operandSegmentSizes = array<i32: 1, 0, 0>} : (!tile.window<array<i32: 4>, f32>) -> tensor<4xf32>
  return
}
