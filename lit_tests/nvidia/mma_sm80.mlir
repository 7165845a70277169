// RUN: tessera-opt %s -p 'tessera-lower-tile-to-gpu{arch=sm_80 num_warps=4},canonicalize,cse,convert-nvgpu-to-nvvm,gpu.module(convert-vector-to-scf,convert-scf-to-cf,convert-nvvm-to-llvm,expand-strided-metadata,lower-affine),nvvm-attach-target{chip=sm_80 features=+ptx80 O=3},gpu.module(convert-gpu-to-nvvm,canonicalize,cse,reconcile-unrealized-casts),gpu-module-to-binary{format=isa}' | FileCheck %s --check-prefix=PTX
// RUN: tessera-opt %s -p 'tessera-lower-tile-to-gpu{arch=sm_80 num_warps=4}' | FileCheck %s --check-prefix=GPU

// A bf16 32x32x16 tile.mma takes the tensor-core path: both operands are staged in shared memory,
// A is read with ldmatrix.x4, B with ldmatrix.x2.trans, and mma.sync m16n8k16 accumulates in f32
// (bf16 through nvvm.mma.sync with i32-packed operands).
// GPU: gpu.func @mm
// GPU: scf.for
// GPU: nvgpu.ldmatrix {{.*}} {numTiles = 4 : i32, transpose = false} : memref<32x16xbf16, #gpu.address_space<workgroup>> -> vector<4x2xbf16>
// GPU: nvgpu.ldmatrix {{.*}} {numTiles = 2 : i32, transpose = true} : memref<16x32xbf16, #gpu.address_space<workgroup>> -> vector<2x2xbf16>
// GPU: nvvm.mma.sync
// GPU-SAME: mma_type<bf16>
// PTX: .target sm_80
// PTX: ldmatrix.sync.aligned.m8n8.x4.shared.b16
// PTX: ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16
// PTX: mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
// PTX: bar.sync
!g = memref<?x?xbf16, strided<[?, ?], offset: ?>>
!o = memref<?x?xf32, strided<[?, ?], offset: ?>>
func.func @mm(%a: !g, %b: !g, %c: !o) attributes {tessera.kernel} {
  %c0 = arith.constant 0 : index
  %va = "tile.view"(%a, %c0, %c0) {sizes = array<i64: 32, 16>, squeeze = array<i64: 0, 0>} : (!g, index, index) -> !tile.window<array<i64: 32, 16>, bf16>
  %vb = "tile.view"(%b, %c0, %c0) {sizes = array<i64: 16, 32>, squeeze = array<i64: 0, 0>} : (!g, index, index) -> !tile.window<array<i64: 16, 32>, bf16>
  %ta = "tile.load"(%va) {operandSegmentSizes = array<i32: 1, 0, 0>} : (!tile.window<array<i64: 32, 16>, bf16>) -> tensor<32x16xbf16>
  %tb = "tile.load"(%vb) {operandSegmentSizes = array<i32: 1, 0, 0>} : (!tile.window<array<i64: 16, 32>, bf16>) -> tensor<16x32xbf16>
  %d = "tile.mma"(%ta, %tb) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<32x16xbf16>, tensor<16x32xbf16>) -> tensor<32x32xf32>
  %vc = "tile.view"(%c, %c0, %c0) {sizes = array<i64: 32, 32>, squeeze = array<i64: 0, 0>} : (!o, index, index) -> !tile.window<array<i64: 32, 32>, f32>
  "tile.store"(%vc, %d) {operandSegmentSizes = array<i32: 1, 1, 0>} : (!tile.window<array<i64: 32, 32>, f32>, tensor<32x32xf32>) -> ()
  return
}
