// tessera-cpu-matmul: an f32 linalg.matmul on static row-major buffers becomes a register-tiled micro-kernel.
// RUN: tessera-opt %s --split-input-file -p 'tessera-cpu-matmul{width=8 registers=16}' | FileCheck %s

// 32x64 with 8 lanes and 16 registers (AVX2): 8 rows by 2 vectors would need 8 * 2 + 2 + 1 = 19 registers,
// 6 rows do not divide 32, so blocks of 4 rows by 2 vectors (8 accumulators) carried through the K loop,
// one broadcast of A per row and one FMA per accumulator.
// CHECK-LABEL: func.func @mm
// CHECK-NOT: linalg.matmul
// CHECK: scf.for %[[I:.*]] = %{{.*}} to %c32{{.*}} step %c4
// CHECK: scf.for %[[J:.*]] = %{{.*}} to %c64{{.*}} step %c16
// CHECK: vector.load %[[C:.*]][%[[I]], %[[J]]] : memref<32x64xf32>, vector<8xf32>
// CHECK: scf.for %[[K:.*]] = %{{.*}} to %c48{{.*}} step %c1{{.*}} iter_args({{.*}}) -> (vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>) {
// CHECK: %[[B0:.*]] = vector.load %{{.*}}[%[[K]], %[[J]]] : memref<48x64xf32>, vector<8xf32>
// CHECK: %[[B1:.*]] = vector.load %{{.*}}[%[[K]], %{{.*}}] : memref<48x64xf32>, vector<8xf32>
// CHECK: %[[A0:.*]] = memref.load %{{.*}}[%[[I]], %[[K]]] : memref<32x48xf32>
// CHECK: %[[S0:.*]] = vector.broadcast %[[A0]] : f32 to vector<8xf32>
// CHECK: vector.fma %[[S0]], %[[B0]], %{{.*}} : vector<8xf32>
// CHECK: vector.fma %[[S0]], %[[B1]], %{{.*}} : vector<8xf32>
// CHECK: scf.yield
// CHECK: vector.store %{{.*}}, %{{.*}}[%[[I]], %[[J]]] : memref<32x64xf32>, vector<8xf32>
func.func @mm(%a: memref<32x48xf32>, %b: memref<48x64xf32>, %c: memref<32x64xf32>) {
  linalg.matmul ins(%a, %b : memref<32x48xf32>, memref<48x64xf32>) outs(%c : memref<32x64xf32>)
  return
}

// -----

// Left to convert-linalg-to-loops: integer operands, strided buffers, tensors, and an N no vector of
// at least four lanes divides.
// CHECK-LABEL: func.func @kept
// CHECK-COUNT-3: linalg.matmul
// CHECK-NOT: vector.fma
func.func @kept(%a: memref<8x8xi32>, %b: memref<8x8xi32>, %c: memref<8x8xi32>,
                %s: memref<8x8xf32, strided<[?, 1], offset: ?>>, %d: memref<8x6xf32>, %e: memref<8x8xf32>,
                %f: memref<8x6xf32>) {
  linalg.matmul ins(%a, %b : memref<8x8xi32>, memref<8x8xi32>) outs(%c : memref<8x8xi32>)
  linalg.matmul ins(%s, %e : memref<8x8xf32, strided<[?, 1], offset: ?>>, memref<8x8xf32>) outs(%e : memref<8x8xf32>)
  linalg.matmul ins(%e, %d : memref<8x8xf32>, memref<8x6xf32>) outs(%f : memref<8x6xf32>)
  return
}
