// RUN: tessera-opt %s --split-input-file -p 'tessera-lower-tile-to-gpu{arch=sm_90a num_warps=4}' | FileCheck %s
// RUN: tessera-opt %s --split-input-file -p 'tessera-lower-tile-to-gpu{arch=sm_90a num_warps=4 persistent=1}' | FileCheck %s --check-prefix=PERS
// RUN: tessera-opt %s --split-input-file -p 'tessera-lower-tile-to-gpu{arch=sm_80 num_warps=4}' | FileCheck %s --check-prefix=DIV

// One program becomes one CTA of 128 threads. A 256-element tile is a vector<2xf32> fragment
// per thread; the bounds-checked load/store become masked gather/scatter on a flat view of the
// global tensor; the full reduction folds per thread, shuffles across the warp and combines the
// warps through the dynamic shared-memory block (the kernel's first use of it: no barrier before the
// warps' writes).
// CHECK: module attributes {gpu.container_module}
// CHECK: gpu.module @kernels
// CHECK: memref.global "public" @__tessera_smem : memref<0xi8, #gpu.address_space<workgroup>> {alignment = 1024 : i64}
// CHECK: gpu.func @scale(%{{.*}}: memref<?xf32, strided<[?], offset: ?>>, %{{.*}}: memref<?xf32, strided<[?], offset: ?>>, %{{.*}}: f32) kernel
// CHECK-SAME: known_block_size = array<i32: 128, 1, 1>
// CHECK-SAME: tessera.num_warps = 4
// CHECK-SAME: tessera.shared_bytes = 16
// CHECK: gpu.thread_id x
// CHECK: gpu.block_id x
// CHECK: vector.gather {{.*}} : memref<?xf32>, vector<2xindex>, vector<2xi1>, vector<2xf32> into vector<2xf32>
// CHECK: arith.mulf {{.*}} : vector<2xf32>
// CHECK: vector.reduction <maximumf>
// CHECK-COUNT-5: gpu.shuffle xor
// CHECK-NOT: gpu.barrier
// CHECK: memref.store {{.*}} : memref<4xf32, #gpu.address_space<workgroup>>
// CHECK: gpu.barrier
// CHECK: vector.scatter {{.*}} : memref<?xf32>, vector<2xindex>, vector<2xi1>, vector<2xf32>
// CHECK-NOT: tile.
// CHECK-NOT: func.func
// persistent=1: the caller's grid comes as three trailing index parameters; the body loops over the linear
// program index from blockIdx.x in steps of gridDim.x, unravels it (x fastest) for program_id, and ends each
// program with a barrier (the next one reuses shared memory).
// PERS: gpu.func @scale(%{{.*}}: memref<?xf32, strided<[?], offset: ?>>, %{{.*}}: memref<?xf32, strided<[?], offset: ?>>, %{{.*}}: f32, %[[GX:.*]]: index, %[[GY:.*]]: index, %[[GZ:.*]]: index) kernel
// PERS-SAME: tessera.persistent
// PERS: %[[XY:.*]] = arith.muli %[[GX]], %[[GY]] : index
// PERS-NEXT: %[[TOTAL:.*]] = arith.muli %[[XY]], %[[GZ]] : index
// PERS-NEXT: %[[B:.*]] = gpu.block_id x
// PERS-NEXT: %[[D:.*]] = gpu.grid_dim x
// PERS-NEXT: scf.for %[[T:.*]] = %[[B]] to %[[TOTAL]] step %[[D]] {
// PERS: %[[PX:.*]] = arith.remui %[[T]], %[[GX]] : index
// PERS: arith.muli %[[PX]], %c256
// PERS: vector.gather
// PERS: vector.scatter
// PERS-NEXT: gpu.barrier
// PERS-NEXT: }
// PERS-NEXT: gpu.return
module {
  func.func @scale(%x: memref<?xf32, strided<[?], offset: ?>>, %out: memref<?xf32, strided<[?], offset: ?>>, %a: f32) attributes {tessera.kernel} {
    %pid = "tile.program_id"() {axis = 0 : i32} : () -> index
    %c256 = arith.constant 256 : index
    %off = arith.muli %pid, %c256 : index
    %v = "tile.view"(%x, %off) {sizes = array<i64: 256>, squeeze = array<i64: 0>} : (memref<?xf32, strided<[?], offset: ?>>, index) -> !tile.window<array<i64: 256>, f32>
    %t = "tile.load"(%v) {operandSegmentSizes = array<i32: 1, 0, 0>} : (!tile.window<array<i64: 256>, f32>) -> tensor<256xf32>
    %s = "tile.broadcast"(%a) : (f32) -> tensor<256xf32>
    %y = arith.mulf %t, %s : tensor<256xf32>
    %m = "tile.reduce"(%y) {kind = "max", axis = 0 : i64} : (tensor<256xf32>) -> f32
    %mb = "tile.broadcast"(%m) : (f32) -> tensor<256xf32>
    %z = arith.subf %y, %mb : tensor<256xf32>
    %w = "tile.view"(%out, %off) {sizes = array<i64: 256>, squeeze = array<i64: 0>} : (memref<?xf32, strided<[?], offset: ?>>, index) -> !tile.window<array<i64: 256>, f32>
    "tile.store"(%w, %z) {operandSegmentSizes = array<i32: 1, 1, 0>} : (!tile.window<array<i64: 256>, f32>, tensor<256xf32>) -> ()
    return
  }
}

// -----
// Integer division (tessera.backends.int_division): where the divisor is 0 (or -1 with INT_MIN, or -1
// for a remainder) it is replaced by 1, and selects give PTX's results, x // 0 == -1 and x % 0 == x,
// instead of LLVM's undefined ones. The fragments divide as vectors.
// DIV-LABEL: gpu.func @divide(
// DIV: %[[B:.*]] = vector.gather
// DIV: %[[A:.*]] = vector.broadcast %{{.*}} : i32 to vector<2xi32>
// DIV: %[[Z:.*]] = arith.cmpi eq, %[[B]], %{{.*}} : vector<2xi32>
// DIV: %[[M1:.*]] = arith.cmpi eq, %[[B]], %{{.*}} : vector<2xi32>
// DIV: %[[AMIN:.*]] = arith.cmpi eq, %[[A]], %{{.*}} : vector<2xi32>
// DIV: %[[OVF:.*]] = arith.andi %[[AMIN]], %[[M1]] : vector<2xi1>
// DIV: %[[BAD:.*]] = arith.ori %[[Z]], %[[OVF]] : vector<2xi1>
// DIV: %[[SAFE:.*]] = arith.select %[[BAD]], %{{.*}}, %[[B]] : vector<2xi1>, vector<2xi32>
// DIV: %[[Q:.*]] = arith.floordivsi %[[A]], %[[SAFE]] : vector<2xi32>
// DIV: %[[QF:.*]] = arith.select %[[Z]], %{{.*}}, %[[Q]] : vector<2xi1>, vector<2xi32>
// DIV: %[[RZ:.*]] = arith.cmpi eq, %[[A]], %{{.*}} : vector<2xi32>
// DIV: %[[RSAFE:.*]] = arith.select %{{.*}}, %{{.*}}, %[[A]] : vector<2xi1>, vector<2xi32>
// DIV: %[[R:.*]] = arith.remsi %[[QF]], %[[RSAFE]] : vector<2xi32>
// DIV: arith.select %[[RZ]], %[[QF]], %[[R]] : vector<2xi1>, vector<2xi32>
// DIV: vector.scatter
module {
  func.func @divide(%x: memref<?xi32, strided<[?], offset: ?>>, %n: i32) attributes {tessera.kernel} {
    %c0 = arith.constant 0 : index
    %v = "tile.view"(%x, %c0) {sizes = array<i64: 256>, squeeze = array<i64: 0>} : (memref<?xi32, strided<[?], offset: ?>>, index) -> !tile.window<array<i64: 256>, i32>
    %t = "tile.load"(%v) {operandSegmentSizes = array<i32: 1, 0, 0>} : (!tile.window<array<i64: 256>, i32>) -> tensor<256xi32>
    %nb = "tile.broadcast"(%n) : (i32) -> tensor<256xi32>
    %q = arith.floordivsi %nb, %t : tensor<256xi32>
    %r = arith.remsi %q, %nb : tensor<256xi32>
    "tile.store"(%v, %r) {operandSegmentSizes = array<i32: 1, 1, 0>} : (!tile.window<array<i64: 256>, i32>, tensor<256xi32>) -> ()
    return
  }
}
