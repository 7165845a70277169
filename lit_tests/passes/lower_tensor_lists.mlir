// RUN: tessera-opt %s -p tessera-lower-tensor-lists | FileCheck %s

// Element %i of a list of rank-2 f32 tensors: row %i of the table gives the address (column 0), the
// sizes (1, 2) and the strides (3, 4) of an LLVM memref descriptor cast to the element's memref type.
// CHECK-LABEL: func.func @element
// CHECK-DAG: %[[C0:.*]] = arith.constant 0 : index
// CHECK: %[[A:.*]] = memref.load %[[T:.*]][%[[I:.*]], %[[C0]]]
// CHECK: %[[P:.*]] = llvm.inttoptr %[[A]] : i64 to !llvm.ptr
// CHECK: llvm.insertvalue %[[P]], %{{.*}}[0]
// CHECK: llvm.insertvalue %[[P]], %{{.*}}[1]
// CHECK: memref.load %[[T]][%[[I]], %{{.*}}]
// CHECK: llvm.insertvalue %{{.*}}[3, 0]
// CHECK: llvm.insertvalue %{{.*}}[4, 0]
// CHECK: llvm.insertvalue %{{.*}}[3, 1]
// CHECK: %[[D:.*]] = llvm.insertvalue %{{.*}}[4, 1]
// CHECK: %[[M:.*]] = builtin.unrealized_conversion_cast %[[D]] : !llvm.struct<(ptr, ptr, i64, array<2 x i64>, array<2 x i64>)> to memref<?x?xf32, strided<[?, ?], offset: ?>>
// CHECK: memref.dim %[[M]]
// CHECK-NOT: tile.list_get
!t = memref<3x5xi64, strided<[?, ?], offset: ?>>
!g = memref<?x?xf32, strided<[?, ?], offset: ?>>
func.func @element(%xs: !t, %i: index) -> index {
  %0 = "tile.list_get"(%xs, %i) : (!t, index) -> !g
  %c1 = arith.constant 1 : index
  %n = memref.dim %0, %c1 : !g
  return %n : index
}
