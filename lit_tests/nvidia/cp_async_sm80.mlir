// RUN: tessera-opt %s -p 'tessera-lower-tile-to-gpu{arch=sm_80 num_warps=4},canonicalize,cse,convert-nvgpu-to-nvvm,gpu.module(convert-vector-to-scf,convert-scf-to-cf,convert-nvvm-to-llvm,expand-strided-metadata,lower-affine),nvvm-attach-target{chip=sm_80 features=+ptx80 O=3},gpu.module(convert-gpu-to-nvvm,canonicalize,cse,reconcile-unrealized-casts),gpu-module-to-binary{format=isa}' | FileCheck %s --check-prefix=PTX
// RUN: tessera-opt %s -p 'tessera-lower-tile-to-gpu{arch=sm_80 num_warps=4}' | FileCheck %s --check-prefix=GPU

// tile.cp_async of a 64x64 bf16 window: 16-byte chunks through cp.async (cg when bypass_l1),
// the source size clamped to the in-bounds elements (the hardware zero-fills the rest), with an
// element-wise fallback for a non-unit-stride or misaligned source; commit/wait map to the
// cp.async group instructions.
// GPU: gpu.func @stage
// GPU: memref.extract_aligned_pointer_as_index
// GPU: scf.if
// GPU: nvgpu.device_async_copy {{.*}}, 8, %{{.*}} {bypassL1} : memref<?xbf16> to memref<4096xbf16, #gpu.address_space<workgroup>>
// GPU: } else {
// GPU: memref.load
// GPU: nvvm.cp.async.commit.group
// GPU: nvvm.cp.async.wait.group 0
// PTX: cp.async.cg.shared.global [{{.*}}], [{{.*}}], 16, %r{{[0-9]+}};
// PTX: cp.async.commit_group;
// PTX: cp.async.wait_group {{.*}}0;
!g = memref<?x?xbf16, strided<[?, ?], offset: ?>>
func.func @stage(%x: !g, %y: !g) attributes {tessera.kernel} {
  %pid = "tile.program_id"() {axis = 0 : i32} : () -> index
  %c64 = arith.constant 64 : index
  %c0 = arith.constant 0 : index
  %row = arith.muli %pid, %c64 : index
  %buf = "tile.alloc_shared"() {swizzle = "none"} : () -> memref<64x64xbf16, #gpu.address_space<workgroup>>
  %v = "tile.view"(%x, %row, %c0) {sizes = array<i64: 64, 64>, squeeze = array<i64: 0, 0>} : (!g, index, index) -> !tile.window<array<i64: 64, 64>, bf16>
  "tile.cp_async"(%buf, %v) {bypass_l1 = true} : (memref<64x64xbf16, #gpu.address_space<workgroup>>, !tile.window<array<i64: 64, 64>, bf16>) -> ()
  "tile.cp_commit_group"() : () -> ()
  "tile.cp_wait_group"() {pending = 0 : i32} : () -> ()
  "tile.barrier"() : () -> ()
  %t = "tile.load"(%buf) {operandSegmentSizes = array<i32: 1, 0, 0>} : (memref<64x64xbf16, #gpu.address_space<workgroup>>) -> tensor<64x64xbf16>
  %w = "tile.view"(%y, %row, %c0) {sizes = array<i64: 64, 64>, squeeze = array<i64: 0, 0>} : (!g, index, index) -> !tile.window<array<i64: 64, 64>, bf16>
  "tile.store"(%w, %t) {operandSegmentSizes = array<i32: 1, 1, 0>} : (!tile.window<array<i64: 64, 64>, bf16>, tensor<64x64xbf16>) -> ()
  return
}
