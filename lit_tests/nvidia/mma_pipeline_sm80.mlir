// RUN: tessera-opt %s -p 'tessera-pipeline-mma,tessera-place-layout-conversions{arch=sm_80 num_warps=4},tessera-lower-tile-to-gpu{arch=sm_80 num_warps=4 num_stages=3},canonicalize,cse,convert-nvgpu-to-nvvm,gpu.module(convert-vector-to-scf,convert-scf-to-cf,convert-nvvm-to-llvm,expand-strided-metadata,lower-affine),nvvm-attach-target{chip=sm_80 features=+ptx80 O=3},gpu.module(convert-gpu-to-nvvm,canonicalize,cse,reconcile-unrealized-casts),gpu-module-to-binary{format=isa}' | FileCheck %s --check-prefix=S3
// RUN: tessera-opt %s -p 'tessera-pipeline-mma,tessera-place-layout-conversions{arch=sm_80 num_warps=4},tessera-lower-tile-to-gpu{arch=sm_80 num_warps=4 num_stages=3},canonicalize,cse,convert-nvgpu-to-nvvm,gpu.module(convert-vector-to-scf,convert-scf-to-cf,convert-nvvm-to-llvm,expand-strided-metadata,lower-affine),nvvm-attach-target{chip=sm_80 features=+ptx80 O=3},gpu.module(convert-gpu-to-nvvm,canonicalize,cse,reconcile-unrealized-casts),gpu-module-to-binary{format=isa}' | FileCheck %s --check-prefix=W3
// RUN: tessera-opt %s -p 'tessera-pipeline-mma,tessera-place-layout-conversions{arch=sm_80 num_warps=4},tessera-lower-tile-to-gpu{arch=sm_80 num_warps=4 num_stages=2},canonicalize,cse,convert-nvgpu-to-nvvm,gpu.module(convert-vector-to-scf,convert-scf-to-cf,convert-nvvm-to-llvm,expand-strided-metadata,lower-affine),nvvm-attach-target{chip=sm_80 features=+ptx80 O=3},gpu.module(convert-gpu-to-nvvm,canonicalize,cse,reconcile-unrealized-casts),gpu-module-to-binary{format=isa}' | FileCheck %s --check-prefix=S2
// RUN: tessera-opt %s -p 'tessera-pipeline-mma,tessera-place-layout-conversions{arch=sm_80 num_warps=4},tessera-lower-tile-to-gpu{arch=sm_80 num_warps=4 num_stages=3}' | FileCheck %s --check-prefix=GPU

// A marked K loop becomes a num_stages-deep cp.async pipeline: the prologue fills S-1 slots, each
// iteration waits for its group (wait_group S-2), refills the slot freed by the previous iteration and
// runs its MMAs from ldmatrix reads of XOR-swizzled slots; the 32 f32 accumulators of a thread are
// loop-carried scalars (registers), stored once after the loop, straight to global memory as v2.
// The grid runs in the grouped order (8 row blocks per group): program ids come from the linear block
// id and the grid's shape.
// GPU: gpu.grid_dim  x
// GPU: gpu.grid_dim  y
// GPU: arith.minui
// GPU: arith.xori
// GPU: scf.for {{.*}} iter_args({{.*}}) -> (f32, f32,
// GPU: nvgpu.ldmatrix {{.*}} {numTiles = 4 : i32, transpose = false}
// GPU: nvgpu.ldmatrix {{.*}} {numTiles = 4 : i32, transpose = true}
// GPU: nvvm.mma.sync
// S3: cp.async.cg.shared.global [%rd{{[0-9]+}}], [%rd{{[0-9]+}}], 16, %r{{[0-9]+}};
// S3: cp.async.commit_group;
// S3: cp.async.commit_group;
// S3-NOT: st.shared
// S3: ldmatrix.sync.aligned.m8n8.x4.shared.b16
// S3-NOT: st.shared
// S3: ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16
// S3-NOT: st.shared
// S3-COUNT-16: mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
// S3-NOT: st.shared
// S3-COUNT-16: st.global.v2.b32
// W3: cp.async.commit_group;
// W3: cp.async.commit_group;
// W3: cp.async.wait_group \091;\0A\09bar.sync \090;
// W3: cp.async.cg.shared.global
// S2-NOT: cp.async.wait_group \091;
// S2: cp.async.wait_group \090;\0A\09bar.sync \090;
// S2-NOT: cp.async.wait_group \091;
!g = memref<?x?xbf16, strided<[?, ?], offset: ?>>
!f = memref<?x?xf32, strided<[?, ?], offset: ?>>
!wa = !tile.window<array<i64: 64, 32>, bf16>
!wb = !tile.window<array<i64: 32, 64>, bf16>
func.func @gemm(%a: !g, %b: !g, %c: !f) attributes {tessera.kernel, tessera.tma_ok = [true, true, true]} {
  %pm = "tile.program_id"() {axis = 0 : i32} : () -> index
  %pn = "tile.program_id"() {axis = 1 : i32} : () -> index
  %zero = arith.constant dense<0.000000e+00> : tensor<64x64xf32>
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  %c64 = arith.constant 64 : index
  %K = memref.dim %a, %c1 : !g
  %m0 = arith.muli %pm, %c64 : index
  %n0 = arith.muli %pn, %c64 : index
  %acc = scf.for %k0 = %c0 to %K step %c32 iter_args(%acc_in = %zero) -> (tensor<64x64xf32>) {
    %va = "tile.view"(%a, %m0, %k0) {sizes = array<i64: 64, 32>, squeeze = array<i64: 0, 0>} : (!g, index, index) -> !wa
    %ta = "tile.load"(%va) {operandSegmentSizes = array<i32: 1, 0, 0>} : (!wa) -> tensor<64x32xbf16>
    %vb = "tile.view"(%b, %k0, %n0) {sizes = array<i64: 32, 64>, squeeze = array<i64: 0, 0>} : (!g, index, index) -> !wb
    %tb = "tile.load"(%vb) {operandSegmentSizes = array<i32: 1, 0, 0>} : (!wb) -> tensor<32x64xbf16>
    %d = "tile.mma"(%ta, %tb, %acc_in) {operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<64x32xbf16>, tensor<32x64xbf16>, tensor<64x64xf32>) -> tensor<64x64xf32>
    scf.yield %d : tensor<64x64xf32>
  }
  %vc = "tile.view"(%c, %m0, %n0) {sizes = array<i64: 64, 64>, squeeze = array<i64: 0, 0>} : (!f, index, index) -> !tile.window<array<i64: 64, 64>, f32>
  "tile.store"(%vc, %acc) {operandSegmentSizes = array<i32: 1, 1, 0>} : (!tile.window<array<i64: 64, 64>, f32>, tensor<64x64xf32>) -> ()
  return
}
