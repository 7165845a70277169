// RUN: tessera-opt %s -p 'tessera-lower-tile-to-gpu{arch=sm_80 num_warps=4},canonicalize,cse,convert-nvgpu-to-nvvm,gpu.module(convert-vector-to-scf,convert-scf-to-cf,convert-nvvm-to-llvm,expand-strided-metadata,lower-affine),nvvm-attach-target{chip=sm_80 features=+ptx80 O=3},gpu.module(convert-gpu-to-nvvm,canonicalize,cse,reconcile-unrealized-casts),gpu-module-to-binary{format=isa}' | FileCheck %s --check-prefix=PTX
// RUN: tessera-opt %s -p 'tessera-lower-tile-to-gpu{arch=sm_80 num_warps=4}' | FileCheck %s --check-prefix=GPU

// A bf16 32x32x16 tile.mma outside a K loop takes the warp-tiled tensor-core path. A is a plain load
// of a window used only by the mma: cp.async copies it to shared memory in 16-byte chunks (XOR-swizzled,
// no registers on the way). B is computed (b * b), so it is stored from registers with rows padded by
// 16 bytes (32 + 8 elements apart). Each of the 2x2 warps reads its 16x16 tile's A with ldmatrix.x4
// and B with ldmatrix.x4.trans, and two mma.sync m16n8k16 (one per n8 tile) accumulate in f32
// registers (bf16 through nvvm.mma.sync with i32-packed operands); the accumulators reach the blocked
// layout through rows of 32 + 8 words.
// GPU: gpu.func @mm
// GPU: nvgpu.device_async_copy {{.*}} {bypassL1} : memref<?xbf16> to memref<512xbf16, #gpu.address_space<workgroup>>
// GPU: vector.store {{.*}} : memref<640xbf16, #gpu.address_space<workgroup>>, vector<4xbf16>
// GPU: nvvm.cp.async.commit.group
// GPU: nvvm.cp.async.wait.group 0
// GPU: nvgpu.ldmatrix {{.*}} {numTiles = 4 : i32, transpose = false} : memref<512xbf16, #gpu.address_space<workgroup>> -> vector<4x2xbf16>
// GPU: nvgpu.ldmatrix {{.*}} {numTiles = 4 : i32, transpose = true} : memref<640xbf16, #gpu.address_space<workgroup>> -> vector<4x2xbf16>
// GPU: nvvm.mma.sync
// GPU-SAME: mma_type<bf16>
// GPU: nvvm.mma.sync
// GPU-NOT: nvvm.mma.sync
// GPU: vector.store {{.*}} : memref<1280xf32, #gpu.address_space<workgroup>>, vector<2xf32>
// PTX: .target sm_80
// PTX: ldmatrix.sync.aligned.m8n8.x4.shared.b16
// PTX: ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16
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
  %tb2 = arith.mulf %tb, %tb : tensor<16x32xbf16>
  %d = "tile.mma"(%ta, %tb2) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<32x16xbf16>, tensor<16x32xbf16>) -> tensor<32x32xf32>
  %vc = "tile.view"(%c, %c0, %c0) {sizes = array<i64: 32, 32>, squeeze = array<i64: 0, 0>} : (!o, index, index) -> !tile.window<array<i64: 32, 32>, f32>
  "tile.store"(%vc, %d) {operandSegmentSizes = array<i32: 1, 1, 0>} : (!tile.window<array<i64: 32, 32>, f32>, tensor<32x32xf32>) -> ()
  return
}
