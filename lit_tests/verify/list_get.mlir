// tile.list_get verifier: a table is a rank-2 i64 memref with 1 + 2r columns for rank-r global tensors.
// RUN: tessera-opt %s --split-input-file --verify-diagnostics

func.func @wrong_columns(%xs: memref<3x4xi64>, %i: index) {
  // expected-error @+1 {{'tile.list_get' op a table of rank-2 tensors has 5 columns (address, sizes, strides), got 4}}
  %0 = "tile.list_get"(%xs, %i) : (memref<3x4xi64>, index) -> memref<?x?xf32, strided<[?, ?], offset: ?>>
  return
}

// -----
func.func @not_i64(%xs: memref<3x5xi32>, %i: index) {
  // expected-error @+1 {{the table must be a rank-2 memref of i64}}
  %0 = "tile.list_get"(%xs, %i) : (memref<3x5xi32>, index) -> memref<?x?xf32, strided<[?, ?], offset: ?>>
  return
}

// -----
func.func @shared_result(%xs: memref<3x5xi64>, %i: index) {
  // expected-error @+1 {{the result must be a global memref}}
  %0 = "tile.list_get"(%xs, %i) : (memref<3x5xi64>, index) -> memref<4x4xf32, #gpu.address_space<workgroup>>
  return
}
