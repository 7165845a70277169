// RUN: tessera-opt %s -p 'tessera-tma-shared-address' | FileCheck %s

// A tile-mode TMA load whose destination is a cast of a shared pointer becomes inline PTX taking the
// 32-bit shared offsets of the destination and the mbarrier (no generic round trip); the cast goes
// when nothing else uses it. A multicast copy is left to MLIR's lowering.
// CHECK-LABEL: llvm.func @k
// CHECK: %[[DST:.*]] = llvm.ptrtoint %arg1 : !llvm.ptr<3> to i32
// CHECK-NEXT: %[[BAR:.*]] = llvm.ptrtoint %arg2 : !llvm.ptr<3> to i32
// CHECK-NEXT: llvm.inline_asm has_side_effects "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [$0], [$1, {$2, $3}], [$4];", "r,l,r,r,r" %[[DST]], %arg0, %arg3, %arg4, %[[BAR]]
// CHECK-NEXT: %[[CAST:.*]] = llvm.addrspacecast %arg1 : !llvm.ptr<3> to !llvm.ptr<7>
// CHECK: nvvm.cp.async.bulk.tensor.shared.cluster.global %[[CAST]], %arg0, %arg2, box[%arg3, %arg4] multicast_mask
// CHECK-NOT: llvm.addrspacecast
module attributes {gpu.container_module} {
  gpu.module @m {
    llvm.func @k(%desc: !llvm.ptr, %dst: !llvm.ptr<3>, %bar: !llvm.ptr<3>, %x: i32, %y: i32) attributes {gpu.kernel, nvvm.kernel} {
      %d7 = llvm.addrspacecast %dst : !llvm.ptr<3> to !llvm.ptr<7>
      nvvm.cp.async.bulk.tensor.shared.cluster.global %d7, %desc, %bar, box[%x, %y] : !llvm.ptr<7>, !llvm.ptr
      %g = llvm.addrspacecast %dst : !llvm.ptr<3> to !llvm.ptr<7>
      %mask = llvm.mlir.constant(3 : i16) : i16
      nvvm.cp.async.bulk.tensor.shared.cluster.global %g, %desc, %bar, box[%x, %y] multicast_mask = %mask : !llvm.ptr<7>, !llvm.ptr
      llvm.return
    }
  }
}
