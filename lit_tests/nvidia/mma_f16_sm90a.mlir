// RUN: tessera-opt %s -p 'tessera-lower-tile-to-gpu{arch=sm_90a num_warps=4},canonicalize,cse,convert-nvgpu-to-nvvm,gpu.module(convert-vector-to-scf,convert-scf-to-cf,convert-nvvm-to-llvm,expand-strided-metadata,lower-affine),nvvm-attach-target{chip=sm_90a features=+ptx80 O=3},gpu.module(convert-gpu-to-nvvm,canonicalize,cse,reconcile-unrealized-casts),gpu-module-to-binary{format=isa}' | FileCheck %s --check-prefix=PTX
// RUN: tessera-opt %s -p 'tessera-lower-tile-to-gpu{arch=sm_80 num_warps=4}' | FileCheck %s --check-prefix=GPU

// A f16 32x24x16 tile.mma (N an odd multiple of 8: no warp tiling) takes the round-robin tensor-core path: both operands are staged in shared memory,
// A is read with ldmatrix.x4, B with ldmatrix.x2.trans, and mma.sync m16n8k16 accumulates in f32
// (f16 through nvgpu.mma.sync), here on sm_90a where mma.sync is valid too.
// GPU: gpu.func @mm
// GPU: scf.for
// GPU: nvgpu.ldmatrix {{.*}} {numTiles = 4 : i32, transpose = false} : memref<32x16xf16, #gpu.address_space<workgroup>> -> vector<4x2xf16>
// GPU: nvgpu.ldmatrix {{.*}} {numTiles = 2 : i32, transpose = true} : memref<16x24xf16, #gpu.address_space<workgroup>> -> vector<2x2xf16>
// GPU: nvgpu.mma.sync
// GPU-SAME: mmaShape = [16, 8, 16]
// PTX: .target sm_90a
// PTX: ldmatrix.sync.aligned.m8n8.x4.shared.b16
// PTX: ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16
// PTX: mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32
// PTX: bar.sync
!g = memref<?x?xf16, strided<[?, ?], offset: ?>>
!o = memref<?x?xf32, strided<[?, ?], offset: ?>>
func.func @mm(%a: !g, %b: !g, %c: !o) attributes {tessera.kernel} {
  %c0 = arith.constant 0 : index
  %va = "tile.view"(%a, %c0, %c0) {sizes = array<i64: 32, 16>, squeeze = array<i64: 0, 0>} : (!g, index, index) -> !tile.window<array<i64: 32, 16>, f16>
  %vb = "tile.view"(%b, %c0, %c0) {sizes = array<i64: 16, 24>, squeeze = array<i64: 0, 0>} : (!g, index, index) -> !tile.window<array<i64: 16, 24>, f16>
  %ta = "tile.load"(%va) {operandSegmentSizes = array<i32: 1, 0, 0>} : (!tile.window<array<i64: 32, 16>, f16>) -> tensor<32x16xf16>
  %tb = "tile.load"(%vb) {operandSegmentSizes = array<i32: 1, 0, 0>} : (!tile.window<array<i64: 16, 24>, f16>) -> tensor<16x24xf16>
  %d = "tile.mma"(%ta, %tb) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<32x16xf16>, tensor<16x24xf16>) -> tensor<32x24xf32>
  %vc = "tile.view"(%c, %c0, %c0) {sizes = array<i64: 32, 24>, squeeze = array<i64: 0, 0>} : (!o, index, index) -> !tile.window<array<i64: 32, 24>, f32>
  "tile.store"(%vc, %d) {operandSegmentSizes = array<i32: 1, 1, 0>} : (!tile.window<array<i64: 32, 24>, f32>, tensor<32x24xf32>) -> ()
  return
}
