// RUN: tessera-opt %s -p tessera-widen-i1-memrefs | FileCheck %s

// Booleans in memory become bytes: allocations, arguments and signatures are retyped, stores
// zero-extend and loads truncate.
// CHECK-LABEL: func.func @masks
// CHECK-SAME: (%[[ARG:.*]]: memref<?xi8>, %{{.*}}: index)
// CHECK: %[[BUF:.*]] = memref.alloc() : memref<16xi8>
// CHECK: %[[L:.*]] = memref.load %[[ARG]]
// CHECK: %[[T:.*]] = arith.trunci %[[L]] : i8 to i1
// CHECK: %[[N:.*]] = arith.xori %[[T]]
// CHECK: %[[E:.*]] = arith.extui %[[N]] : i1 to i8
// CHECK: memref.store %[[E]], %[[BUF]]
func.func @masks(%m: memref<?xi1>, %i: index) {
  %buf = memref.alloc() : memref<16xi1>
  %true = arith.constant true
  %v = memref.load %m[%i] : memref<?xi1>
  %n = arith.xori %v, %true : i1
  memref.store %n, %buf[%i] : memref<16xi1>
  memref.dealloc %buf : memref<16xi1>
  return
}

// Folded bool tiles (`b < 0` of a constant b) bufferize to constant globals: they hold bytes too,
// splat or not, so `memref.get_global` agrees with its global.
// CHECK: memref.global "private" constant @splat : memref<4xi8> = dense<1>
// CHECK: memref.global "private" constant @mixed : memref<4xi8> = dense<[1, 0, 0, 1]>
memref.global "private" constant @splat : memref<4xi1> = dense<true>
memref.global "private" constant @mixed : memref<4xi1> = dense<[true, false, false, true]>
// CHECK-LABEL: func.func @constants
// CHECK: %[[G:.*]] = memref.get_global @mixed : memref<4xi8>
// CHECK: %[[L:.*]] = memref.load %[[G]]
// CHECK: arith.trunci %[[L]] : i8 to i1
// CHECK-NOT: xi1>
func.func @constants(%i: index) -> i1 {
  %g = memref.get_global @mixed : memref<4xi1>
  %v = memref.load %g[%i] : memref<4xi1>
  return %v : i1
}
