// RUN: tessera-opt %s -p 'tessera-narrow-index' | FileCheck %s

// In a kernel specialised on small tensors (tessera.index32), per-thread index arithmetic becomes i32:
// the thread id is truncated once; a uniform offset that reaches a bounds test saturates to +-2^30,
// one that only addresses memory wraps; sizes truncate; sums and products whose range is known carry
// nsw; accesses get the offset sign-extended back. Kernels without the attribute are left alone.
// CHECK-LABEL: gpu.func @scale
// CHECK: %[[TID:.*]] = gpu.thread_id x
// CHECK-NEXT: %[[T32:.*]] = arith.index_cast %[[TID]] : index to i32
// CHECK: %[[BASE:.*]] = arith.muli %{{.*}}, %c512 : index
// CHECK: %[[LO:.*]] = arith.maxsi %[[BASE]], %c-1073741824 : index
// CHECK-NEXT: %[[SAT:.*]] = arith.minsi %[[LO]], %c1073741824 : index
// CHECK-NEXT: %[[B32:.*]] = arith.index_cast %[[SAT]] : index to i32
// CHECK: %[[FAR:.*]] = arith.muli %{{.*}}, %c1024 : index
// CHECK-NEXT: %[[F32:.*]] = arith.index_cast %[[FAR]] : index to i32
// CHECK: %[[LANE:.*]] = arith.muli %[[T32]], %c4_i32 overflow<nsw> : i32
// CHECK-NEXT: %[[I:.*]] = arith.addi %[[B32]], %[[LANE]] overflow<nsw> : i32
// CHECK-NEXT: %[[I64:.*]] = arith.index_cast %[[I]] : i32 to index
// CHECK: %[[J:.*]] = arith.addi %[[F32]], %[[LANE]] : i32
// CHECK-NEXT: %[[J64:.*]] = arith.index_cast %[[J]] : i32 to index
// CHECK: %[[N:.*]] = arith.index_cast %{{.*}} : index to i32
// CHECK-NEXT: %[[OK:.*]] = arith.cmpi ult, %[[I]], %[[N]] : i32
// CHECK: memref.load %{{.*}}[%[[I64]]]
// CHECK: memref.load %{{.*}}[%[[J64]]]
// CHECK-LABEL: gpu.func @wide
// CHECK-NOT: i32
// CHECK: gpu.return
module attributes {gpu.container_module} {
  gpu.module @kernels {
    gpu.func @scale(%x: memref<?xf32, strided<[?], offset: ?>>) kernel attributes {tessera.index32} {
      %c0 = arith.constant 0 : index
      %c4 = arith.constant 4 : index
      %c512 = arith.constant 512 : index
      %c1024 = arith.constant 1024 : index
      %tid = gpu.thread_id x
      %bid = gpu.block_id x
      %base = arith.muli %bid, %c512 : index
      %far = arith.muli %bid, %c1024 : index
      %lane = arith.muli %tid, %c4 : index
      %i = arith.addi %base, %lane : index
      %j = arith.addi %far, %lane : index
      %n = memref.dim %x, %c0 : memref<?xf32, strided<[?], offset: ?>>
      %ok = arith.cmpi ult, %i, %n : index
      scf.if %ok {
        %v = memref.load %x[%i] : memref<?xf32, strided<[?], offset: ?>>
        %u = memref.load %x[%j] : memref<?xf32, strided<[?], offset: ?>>
        %w = arith.addf %v, %u : f32
        memref.store %w, %x[%i] : memref<?xf32, strided<[?], offset: ?>>
      }
      gpu.return
    }
    gpu.func @wide(%x: memref<?xf32, strided<[?], offset: ?>>) kernel {
      %c4 = arith.constant 4 : index
      %tid = gpu.thread_id x
      %i = arith.muli %tid, %c4 : index
      %v = memref.load %x[%i] : memref<?xf32, strided<[?], offset: ?>>
      memref.store %v, %x[%i] : memref<?xf32, strided<[?], offset: ?>>
      gpu.return
    }
  }
}
