// RUN: tessera-opt %s -p 'tessera-narrow-index' | FileCheck %s

// In a kernel specialised on small tensors (tessera.index32), per-thread index arithmetic becomes i32:
// the thread id is truncated once; a block offset `program_id * c` that reaches a bounds test clamps
// its program id (min(pid, 2^30 / c) * c), another uniform offset that does saturates to +-2^30, and one
// that only addresses memory wraps; sizes truncate; sums and products whose range is known, or that only
// address memory, carry nsw; accesses get the offset sign-extended back. Kernels without the attribute
// are left alone.
// CHECK-LABEL: gpu.func @scale
// CHECK: %[[TID:.*]] = gpu.thread_id x
// CHECK-NEXT: %[[T32:.*]] = arith.index_cast %[[TID]] : index to i32
// CHECK: %[[BID32:.*]] = arith.index_cast %[[BID:.*]] : index to i32
// CHECK-NEXT: %[[CAP:.*]] = arith.constant 2097152 : i32
// CHECK-NEXT: %[[PID:.*]] = arith.minui %[[BID32]], %[[CAP]] : i32
// CHECK-NEXT: %[[C512:.*]] = arith.constant 512 : i32
// CHECK-NEXT: %[[BASE:.*]] = arith.muli %[[PID]], %[[C512]] overflow<nsw> : i32
// CHECK: %[[SH:.*]] = arith.addi %{{.*}}, %{{.*}} : index
// CHECK: %[[LO:.*]] = arith.maxsi %[[SH]], %c-1073741824 : index
// CHECK-NEXT: %[[HI:.*]] = arith.minsi %[[LO]], %c1073741824 : index
// CHECK-NEXT: %[[SH32:.*]] = arith.index_cast %[[HI]] : index to i32
// CHECK: %[[FAR:.*]] = arith.muli %[[BID]], %c1024 : index
// CHECK-NEXT: %[[FAR32:.*]] = arith.index_cast %[[FAR]] : index to i32
// CHECK: %[[LANE:.*]] = arith.muli %[[T32]], %c4_i32 overflow<nsw> : i32
// CHECK-NEXT: %[[I:.*]] = arith.addi %[[BASE]], %[[LANE]] overflow<nsw> : i32
// CHECK-NEXT: %[[I64:.*]] = arith.index_cast %[[I]] : i32 to index
// CHECK-NEXT: %[[J:.*]] = arith.addi %[[FAR32]], %[[LANE]] overflow<nsw> : i32
// CHECK-NEXT: %[[J64:.*]] = arith.index_cast %[[J]] : i32 to index
// CHECK-NEXT: %[[K:.*]] = arith.addi %[[SH32]], %[[LANE]] overflow<nsw> : i32
// CHECK: %[[N:.*]] = arith.index_cast %{{.*}} : index to i32
// CHECK-NEXT: arith.cmpi ult, %[[I]], %[[N]] : i32
// CHECK-NEXT: arith.cmpi ult, %[[K]], %[[N]] : i32
// CHECK: memref.load %{{.*}}[%[[I64]]]
// CHECK: memref.load %{{.*}}[%[[J64]]]
// CHECK-LABEL: gpu.func @wide
// CHECK-NOT: i32
// CHECK: gpu.return
module attributes {gpu.container_module} {
  gpu.module @kernels {
    gpu.func @scale(%x: memref<?xf32, strided<[?], offset: ?>>, %s: i64) kernel attributes {tessera.index32} {
      %c0 = arith.constant 0 : index
      %c4 = arith.constant 4 : index
      %c512 = arith.constant 512 : index
      %c1024 = arith.constant 1024 : index
      %tid = gpu.thread_id x
      %bid = gpu.block_id x
      %start = arith.index_cast %s : i64 to index
      %base = arith.muli %bid, %c512 : index
      %shifted = arith.addi %base, %start : index
      %far = arith.muli %bid, %c1024 : index
      %lane = arith.muli %tid, %c4 : index
      %i = arith.addi %base, %lane : index
      %j = arith.addi %far, %lane : index
      %k = arith.addi %shifted, %lane : index
      %n = memref.dim %x, %c0 : memref<?xf32, strided<[?], offset: ?>>
      %ok = arith.cmpi ult, %i, %n : index
      %ok2 = arith.cmpi ult, %k, %n : index
      %both = arith.andi %ok, %ok2 : i1
      scf.if %both {
        %v = memref.load %x[%i] : memref<?xf32, strided<[?], offset: ?>>
        %u = memref.load %x[%j] : memref<?xf32, strided<[?], offset: ?>>
        %w = arith.addf %v, %u : f32
        memref.store %w, %x[%k] : memref<?xf32, strided<[?], offset: ?>>
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
