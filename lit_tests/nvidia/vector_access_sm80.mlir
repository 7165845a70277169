// RUN: tessera-opt %s -p 'tessera-lower-tile-to-gpu{arch=sm_80 num_warps=4},canonicalize,cse,convert-nvgpu-to-nvvm,gpu.module(convert-vector-to-scf,convert-scf-to-cf,convert-nvvm-to-llvm,expand-strided-metadata,lower-affine),nvvm-attach-target{chip=sm_80 features=+ptx80 O=3},gpu.module(convert-gpu-to-nvvm,canonicalize,cse,reconcile-unrealized-casts),gpu-module-to-binary{format=isa}' | FileCheck %s --check-prefix=PTX
// RUN: tessera-opt %s -p 'tessera-lower-tile-to-gpu{arch=sm_80 num_warps=4}' | FileCheck %s --check-prefix=GPU

// Blocked fragments: a 1024-element f32 tile over 128 threads is 8 slots a thread, two runs of 4
// contiguous elements. On tensors of the aligned stride class (`tessera.tma_ok`: unit inner stride,
// 16-byte aligned base and strides) each run whose first element is 4-aligned and wholly in bounds is
// one 16-byte vector access; a ragged run goes element by element under its mask, and a run wholly
// out of bounds costs one test. @scalar's tensors are not in that class: masked gathers and scatters.
// GPU-LABEL: gpu.func @axpy
// GPU: scf.if
// GPU: vector.load {{.*}} {alignment = 16 : i64} : memref<?xf32>, vector<4xf32>
// GPU: } else {
// GPU: memref.load
// GPU: vector.store {{.*}} {alignment = 16 : i64} : memref<?xf32>, vector<4xf32>
// GPU-LABEL: gpu.func @scalar
// GPU-NOT: vector.load
// GPU: vector.gather
// GPU: vector.scatter
// PTX-LABEL: .entry axpy
// PTX-COUNT-2: ld.global.v4.{{[bf]}}32
// PTX: st.global.v4.{{[bf]}}32
// PTX-LABEL: .entry scalar
// PTX-NOT: .v4.
// PTX: ret;
// @whole is @axpy specialised on its tensors' last dim holding whole 16-byte chunks
// (`tessera.whole_chunks`, as Triton specialises on divisibility): each run is wholly in or wholly
// out of bounds, so one test per run guards a vector access and nothing goes element by element.
// PTX-LABEL: .entry whole
// PTX-NOT: ld.global.b32
// PTX-COUNT-2: ld.global.v4.{{[bf]}}32
// PTX-NOT: ld.global.b32
// PTX-NOT: st.global.b32
// PTX: ret;
!g = memref<?xf32, strided<[?], offset: ?>>
func.func @axpy(%x: !g, %y: !g, %a: f32) attributes {tessera.kernel, tessera.tma_ok = [true, true, false]} {
  %pid = "tile.program_id"() {axis = 0 : i32} : () -> index
  %c1024 = arith.constant 1024 : index
  %off = arith.muli %pid, %c1024 : index
  %vx = "tile.view"(%x, %off) {sizes = array<i64: 1024>, squeeze = array<i64: 0>} : (!g, index) -> !tile.window<array<i64: 1024>, f32>
  %t = "tile.load"(%vx) {operandSegmentSizes = array<i32: 1, 0, 0>} : (!tile.window<array<i64: 1024>, f32>) -> tensor<1024xf32>
  %s = "tile.broadcast"(%a) : (f32) -> tensor<1024xf32>
  %r = arith.mulf %t, %s : tensor<1024xf32>
  %vy = "tile.view"(%y, %off) {sizes = array<i64: 1024>, squeeze = array<i64: 0>} : (!g, index) -> !tile.window<array<i64: 1024>, f32>
  "tile.store"(%vy, %r) {operandSegmentSizes = array<i32: 1, 1, 0>} : (!tile.window<array<i64: 1024>, f32>, tensor<1024xf32>) -> ()
  return
}
func.func @scalar(%x: !g, %y: !g, %a: f32) attributes {tessera.kernel} {
  %pid = "tile.program_id"() {axis = 0 : i32} : () -> index
  %c1024 = arith.constant 1024 : index
  %off = arith.muli %pid, %c1024 : index
  %vx = "tile.view"(%x, %off) {sizes = array<i64: 1024>, squeeze = array<i64: 0>} : (!g, index) -> !tile.window<array<i64: 1024>, f32>
  %t = "tile.load"(%vx) {operandSegmentSizes = array<i32: 1, 0, 0>} : (!tile.window<array<i64: 1024>, f32>) -> tensor<1024xf32>
  %s = "tile.broadcast"(%a) : (f32) -> tensor<1024xf32>
  %r = arith.mulf %t, %s : tensor<1024xf32>
  %vy = "tile.view"(%y, %off) {sizes = array<i64: 1024>, squeeze = array<i64: 0>} : (!g, index) -> !tile.window<array<i64: 1024>, f32>
  "tile.store"(%vy, %r) {operandSegmentSizes = array<i32: 1, 1, 0>} : (!tile.window<array<i64: 1024>, f32>, tensor<1024xf32>) -> ()
  return
}
func.func @whole(%x: !g, %y: !g, %a: f32) attributes {tessera.kernel, tessera.tma_ok = [true, true, false], tessera.whole_chunks = [true, true, false]} {
  %pid = "tile.program_id"() {axis = 0 : i32} : () -> index
  %c1024 = arith.constant 1024 : index
  %off = arith.muli %pid, %c1024 : index
  %vx = "tile.view"(%x, %off) {sizes = array<i64: 1024>, squeeze = array<i64: 0>} : (!g, index) -> !tile.window<array<i64: 1024>, f32>
  %t = "tile.load"(%vx) {operandSegmentSizes = array<i32: 1, 0, 0>} : (!tile.window<array<i64: 1024>, f32>) -> tensor<1024xf32>
  %s = "tile.broadcast"(%a) : (f32) -> tensor<1024xf32>
  %r = arith.mulf %t, %s : tensor<1024xf32>
  %vy = "tile.view"(%y, %off) {sizes = array<i64: 1024>, squeeze = array<i64: 0>} : (!g, index) -> !tile.window<array<i64: 1024>, f32>
  "tile.store"(%vy, %r) {operandSegmentSizes = array<i32: 1, 1, 0>} : (!tile.window<array<i64: 1024>, f32>, tensor<1024xf32>) -> ()
  return
}
