// Verifier of the small ops: program_id / num_programs axis in 0..2, cp_wait_group pending >= 0,
// alloc_shared results are static memrefs in #gpu.address_space<workgroup>.
// RUN: tessera-opt %s --split-input-file --verify-diagnostics

func.func @pid_axis() {
  // expected-error @+1 {{'tile.program_id' op axis must be 0, 1 or 2, got 3}}
  %0 = "tile.program_id"() {axis = 3 : i32} : () -> index
  return
}

// -----
func.func @nprog_axis() {
  // expected-error @+1 {{'tile.num_programs' op axis must be 0, 1 or 2, got -1}}
  %0 = "tile.num_programs"() {axis = -1 : i32} : () -> index
  return
}

// -----
func.func @wait_pending() {
  // expected-error @+1 {{'tile.cp_wait_group' op pending must be >= 0, got -1}}
  "tile.cp_wait_group"() {pending = -1 : i32} : () -> ()
  return
}

// -----
func.func @alloc_space() {
  // expected-error @+1 {{'tile.alloc_shared' op result memref must be in #gpu.address_space<workgroup> (a shared buffer), got memref<16xf32>}}
  %0 = "tile.alloc_shared"() {swizzle = "none"} : () -> memref<16xf32>
  return
}

// -----
func.func @alloc_dynamic() {
  // expected-error @+1 {{result shared memref must have a static shape, got memref<?xf32, #gpu.address_space<workgroup>>}}
  %0 = "tile.alloc_shared"() {swizzle = "none"} : () -> memref<?xf32, #gpu.address_space<workgroup>>
  return
}

// -----
// Several violations in one function: each is reported at its own op.
func.func @several() {
  // expected-error @+1 {{axis must be 0, 1 or 2, got 7}}
  %0 = "tile.program_id"() {axis = 7 : i32} : () -> index
  // expected-error @below {{pending must be >= 0, got -3}}
  "tile.cp_wait_group"() {pending = -3 : i32} : () -> ()
  return
}

// -----
func.func @alloc_rank0() {
  // expected-error @+1 {{result shared memref must have rank >= 1 and positive sizes, got memref<f32, #gpu.address_space<workgroup>>}}
  %0 = "tile.alloc_shared"() {swizzle = "none"} : () -> memref<f32, #gpu.address_space<workgroup>>
  return
}

// -----
func.func @alloc_elem() {
  // expected-error @+1 {{element type must be an integer or float type, got index}}
  %0 = "tile.alloc_shared"() {swizzle = "none"} : () -> memref<4xindex, #gpu.address_space<workgroup>>
  return
}

// -----
// Integer attributes wider than 64 bits are rejected (reading them aborts inside the MLIR bindings).
func.func @wide_axis() {
  // expected-error @+1 {{'tile.program_id' op attribute 'axis' must be an integer of at most 64 bits}}
  %0 = "tile.program_id"() {axis = 99999999999999999999999 : i128} : () -> index
  return
}

// -----
func.func @axis_not_integer() {
  // expected-error @+1 {{expected base attribute 'builtin.integer' but got 'builtin.float'}}
  %0 = "tile.program_id"() {axis = 1.0 : f32} : () -> index
  return
}
