// RUN: tessera-opt %s -p tessera-lower-deallocations | FileCheck %s

// A dealloc of two memrefs with a retained one: every operand is freed behind its own
// condition and pointer checks, with no i1 memref (which LLVM 22.1's memref lowering rejects).
// CHECK-LABEL: func.func @two
// CHECK-NOT: bufferization.dealloc
// CHECK-NOT: memref<2xi1>
// CHECK: %[[PA:.*]] = memref.extract_aligned_pointer_as_index
// CHECK: %[[PB:.*]] = memref.extract_aligned_pointer_as_index
// CHECK: %[[PR:.*]] = memref.extract_aligned_pointer_as_index
// CHECK: arith.cmpi ne, %[[PA]], %[[PR]]
// CHECK: scf.if
// CHECK-NEXT: memref.dealloc
// CHECK: arith.cmpi eq, %[[PA]], %[[PB]]
// CHECK: scf.if
// CHECK-NEXT: memref.dealloc
// CHECK: %[[OWN:.*]] = arith.ori %{{[0-9]+}}, %{{[0-9]+}} : i1
// CHECK: return %[[OWN]] : i1
func.func @two(%a: memref<4xf32>, %b: memref<8xf32>, %ca: i1, %cb: i1, %r: memref<4xf32>) -> i1 {
  %o = bufferization.dealloc (%a, %b : memref<4xf32>, memref<8xf32>) if (%ca, %cb) retain (%r : memref<4xf32>)
  return %o : i1
}
