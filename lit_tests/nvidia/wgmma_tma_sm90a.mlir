// RUN: tessera-opt %s -p 'tessera-use-tma,tessera-use-wgmma{num_warps=4},tessera-lower-tile-to-gpu{arch=sm_90a num_warps=4 num_stages=3},canonicalize,cse,convert-nvgpu-to-nvvm,gpu.module(convert-vector-to-scf,convert-scf-to-cf,convert-nvvm-to-llvm,expand-strided-metadata,lower-affine),nvvm-attach-target{chip=sm_90a features=+ptx80 O=3},gpu.module(convert-gpu-to-nvvm,canonicalize,cse,reconcile-unrealized-casts),gpu-module-to-binary{format=isa}' | FileCheck %s --check-prefix=PTX
// RUN: tessera-opt %s -p 'tessera-use-tma,tessera-use-wgmma{num_warps=4},tessera-lower-tile-to-gpu{arch=sm_90a num_warps=4 num_stages=3}' | FileCheck %s --check-prefix=GPU
// RUN: tessera-opt %s -p 'tessera-use-tma,tessera-use-wgmma{num_warps=8},tessera-lower-tile-to-gpu{arch=sm_90a num_warps=8 num_stages=3}' | FileCheck %s --check-prefix=TWO
// RUN: tessera-opt %s -p 'tessera-use-tma,tessera-use-wgmma{num_warps=8 warp_specialize=1},tessera-lower-tile-to-gpu{arch=sm_90a num_warps=8 num_stages=3 warp_specialize=1}' | FileCheck %s --check-prefix=WS

// The sm_90a GEMM path: TMA loads (128B swizzle) into 3 shared-memory stages armed with mbarriers,
// wgmma.mma_async on a warpgroup accumulator, descriptors as two extra !llvm.ptr kernel arguments.
// GPU: gpu.func @gemm({{.*}}, %[[DA:.*]]: !llvm.ptr, %[[DB:.*]]: !llvm.ptr) kernel
// GPU-SAME: tessera.tma = {{\[}}[0, 128, 64], [1, 64, 64]]
// GPU: nvgpu.mbarrier.create -> <memorySpace = #gpu.address_space<workgroup>, num_barriers = 6>
// GPU: nvgpu.mbarrier.init %{{.*}}[%c0{{.*}}], %c1
// GPU: nvgpu.mbarrier.init %{{.*}}[%c3], %c128
// GPU: nvgpu.tma.prefetch.descriptor
// GPU: nvgpu.mbarrier.arrive.expect_tx {{.*}}, %c32768
// GPU: nvgpu.tma.async.load
// Barriers 0-2 are the slots' "full" barriers (thread 0 arms them), 3-5 their "empty" barriers (all 128
// threads release). A K loop that may not run sits in an scf.if whose else branch makes the zero
// accumulator (ptxas serialises every wgmma when other instructions define accumulator registers between
// a wgmma and its wait). Iteration i's slot and phase are carried (no division by num_stages); it waits for
// its slot, issues one wgmma group per 64 rows of the accumulator (two 64x128 accumulators: nvgpu's store
// of a taller one misplaces its second half) and waits until this iteration's groups are the only ones in
// flight (wait_group 2 after the second; the first's wait, 3, waits for nothing): no drain per K step; every thread releases the slot the retired group read, (i - 1) % 3, on
// its empty barrier, and thread 0 waits for that release (no CTA barrier) before refilling it with the
// tiles of iteration i + 2 (k = iv + 2·64). wait_group 0 only after the loop, inside the scf.if.
// GPU: scf.if %{{.*}} -> (!nvgpu.warpgroup.accumulator
// GPU: nvgpu.warpgroup.mma.init.accumulator
// GPU: scf.for %[[IV:[a-z0-9]+]] = {{.*}} iter_args(%{{.*}} = %{{.*}}, %[[SLOT:[a-z0-9]+]] = %c0{{.*}}, %[[PHASE:[a-z0-9]+]] = %c0{{.*}})
// GPU: %[[PARITY:.*]] = arith.cmpi ne, %[[PHASE]], %c0
// GPU: nvgpu.mbarrier.try_wait.parity %{{.*}}[%[[SLOT]]], %[[PARITY]]
// GPU: nvgpu.warpgroup.generate.descriptor
// GPU: nvgpu.warpgroup.mma {{.*}} {transposeB, waitGroup = 3 : i64}
// GPU: nvgpu.warpgroup.mma {{.*}} {transposeB, waitGroup = 2 : i64}
// GPU-NOT: gpu.barrier
// GPU: nvgpu.mbarrier.arrive
// GPU-NOT: gpu.barrier
// GPU: %[[AHEAD:.*]] = arith.muli %c2{{.*}}, %c64{{.*}} : index
// GPU: %[[K:.*]] = arith.addi %[[IV]], %[[AHEAD]] : index
// GPU: nvgpu.mbarrier.try_wait.parity
// GPU: nvgpu.tma.async.load %{{.*}}[%[[K]], %{{.*}}]
// GPU: scf.yield
// GPU-NOT: arith.divui
// GPU: nvvm.wgmma.wait.group.sync.aligned 0
// GPU-NEXT: scf.yield
// GPU: } else {
// GPU-NEXT: nvgpu.warpgroup.mma.init.accumulator
// GPU: nvgpu.warpgroup.mma.store {{.*}} to memref<64x128xf32, strided<[136, 1]>, #gpu.address_space<workgroup>>
// GPU: nvgpu.warpgroup.mma.store {{.*}} to memref<64x128xf32, strided<[136, 1]>, #gpu.address_space<workgroup>>
// The epilogue (the accumulator's only use is a store of the whole tile to an aligned tensor) stores the
// accumulator to shared memory with rows 136 words apart (bank-conflict-free), then copies it to C in
// 16-byte pieces, element by element only at ragged edges.
// GPU: scf.for
// GPU: vector.load {{.*}} {alignment = 16 : i64} : memref<17408xf32, #gpu.address_space<workgroup>>, vector<4xf32>
// GPU: vector.store {{.*}} {alignment = 16 : i64} : memref<?xf32>, vector<4xf32>
// Two consumer warpgroups (8 warps): warpgroup g = tid / 128 computes rows 64g.. of the tile from the
// same slots, its A descriptor starting 64 rows (8192 bytes) into the slot; 64x128 accumulators each.
// TWO: %[[G:.*]] = arith.divui %{{.*}}, %c128
// TWO: scf.for
// TWO: arith.muli %[[G]], %c8192
// TWO: nvgpu.warpgroup.generate.descriptor {{.*}} : memref<64x64xbf16, #gpu.address_space<workgroup>>
// TWO: nvgpu.warpgroup.mma {{.*}} -> <fragmented = vector<64x128xf32>>
// TWO: nvgpu.warpgroup.mma.store {{.*}} to memref<64x128xf32, strided<[136, 1]>, #gpu.address_space<workgroup>>
// Warp specialisation (8 warps, warp_specialize=1): warpgroup 1 is the producer. It drops to 40 registers;
// its first thread walks the K loop, waiting on a slot's empty barrier (filled by the 128 consumer threads)
// from iteration 3 on, then issuing the slot's TMA loads. Warpgroup 0 rises to 240 registers, only waits on
// full barriers, runs wgmma and releases slots, and (the C store being all that follows the loop) runs the
// rest of the kernel alone: its barriers are named barrier 1 over 128 threads, and the kernel's register
// budget is capped (.maxnreg 248) so the two budgets fit 64K.
// WS: gpu.func @gemm
// WS-SAME: nvvm.maxnreg = 248
// WS: nvgpu.mbarrier.init %{{.*}}[%c3], %c128
// WS: %[[P:.*]] = arith.cmpi uge, %thread_id_x, %c128
// WS: scf.if %[[P]] {
// WS-NEXT: nvvm.setmaxregister  decrease 40
// WS: scf.for
// WS: nvgpu.mbarrier.try_wait.parity
// WS: nvgpu.mbarrier.arrive.expect_tx
// WS: nvgpu.tma.async.load
// WS: } else {
// WS-NEXT: nvvm.setmaxregister  increase 240
// WS: scf.for
// WS-NOT: nvgpu.tma.async.load
// WS: nvgpu.warpgroup.mma
// WS-NOT: nvgpu.tma.async.load
// WS: nvgpu.mbarrier.arrive
// WS: scf.yield
// WS-NOT: gpu.barrier
// WS: nvvm.barrier id = %{{.*}} number_of_threads = %c128
// WS: nvgpu.warpgroup.mma.store
// WS-NOT: gpu.barrier
// WS: gpu.return
// PTX: .target sm_90a
// PTX: .param .u64 .ptr .align 1 gemm_param_21,
// PTX: .param .u64 .ptr .align 1 gemm_param_22
// PTX: mbarrier.init.shared
// PTX: fence.mbarrier_init
// PTX: cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes
// PTX: mbarrier.try_wait.parity
// PTX: wgmma.fence.sync.aligned
// PTX: wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16
// (the PTX is one escaped string in the gpu.binary: tabs are \09)
// PTX: wgmma.commit_group.sync.aligned;
// PTX-SAME: wgmma.wait_group.sync.aligned \093;
// PTX-SAME: wgmma.commit_group.sync.aligned;
// PTX-SAME: wgmma.wait_group.sync.aligned \092;
// PTX-SAME: mbarrier.arrive.shared.b64
// PTX-SAME: wgmma.wait_group.sync.aligned \090;
// PTX-SAME: ld.shared.v4
// PTX-SAME: st.global.v4
!g = memref<?x?xbf16, strided<[?, ?], offset: ?>>
!o = memref<?x?xf32, strided<[?, ?], offset: ?>>
func.func @gemm(%a: !g, %b: !g, %c: !o) attributes {tessera.kernel, tessera.tma_ok = [true, true, true]} {
  %pm = "tile.program_id"() {axis = 0 : i32} : () -> index
  %pn = "tile.program_id"() {axis = 1 : i32} : () -> index
  %zero = arith.constant dense<0.000000e+00> : tensor<128x128xf32>
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %c128 = arith.constant 128 : index
  %K = memref.dim %a, %c1 : !g
  %m0 = arith.muli %pm, %c128 : index
  %n0 = arith.muli %pn, %c128 : index
  %acc = scf.for %k0 = %c0 to %K step %c64 iter_args(%acc_in = %zero) -> (tensor<128x128xf32>) {
    %va = "tile.view"(%a, %m0, %k0) {sizes = array<i64: 128, 64>, squeeze = array<i64: 0, 0>} : (!g, index, index) -> !tile.window<array<i64: 128, 64>, bf16>
    %ta = "tile.load"(%va) {operandSegmentSizes = array<i32: 1, 0, 0>} : (!tile.window<array<i64: 128, 64>, bf16>) -> tensor<128x64xbf16>
    %vb = "tile.view"(%b, %k0, %n0) {sizes = array<i64: 64, 128>, squeeze = array<i64: 0, 0>} : (!g, index, index) -> !tile.window<array<i64: 64, 128>, bf16>
    %tb = "tile.load"(%vb) {operandSegmentSizes = array<i32: 1, 0, 0>} : (!tile.window<array<i64: 64, 128>, bf16>) -> tensor<64x128xbf16>
    %d = "tile.mma"(%ta, %tb, %acc_in) {operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<128x64xbf16>, tensor<64x128xbf16>, tensor<128x128xf32>) -> tensor<128x128xf32>
    scf.yield %d : tensor<128x128xf32>
  }
  %vc = "tile.view"(%c, %m0, %n0) {sizes = array<i64: 128, 128>, squeeze = array<i64: 0, 0>} : (!o, index, index) -> !tile.window<array<i64: 128, 128>, f32>
  "tile.store"(%vc, %acc) {operandSegmentSizes = array<i32: 1, 1, 0>} : (!tile.window<array<i64: 128, 128>, f32>, tensor<128x128xf32>) -> ()
  return
}
