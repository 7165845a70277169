// tessera-cpu-reduce: a linalg.reduce over one dimension of a static row-major buffer becomes vector code.
// RUN: tessera-opt %s --split-input-file -p 'tessera-cpu-reduce{width=8}' | FileCheck %s

// Over the innermost dimension (a row sum of 64 lanes): four 8-lane accumulators over strides of 32,
// combined pairwise, reduced across lanes, then combined with the output's initial value.
// CHECK-LABEL: func.func @rows
// CHECK-NOT: linalg.reduce
// CHECK: scf.for %[[R:.*]] = %{{.*}} to %c16
// CHECK-COUNT-4: vector.load %{{.*}}[%[[R]], %{{.*}}] : memref<16x64xf32>, vector<8xf32>
// CHECK: %[[ACC:.*]]:4 = scf.for %{{.*}} = %c32{{.*}} to %c64{{.*}} step %c32{{.*}} iter_args(
// CHECK-COUNT-4: arith.addf %{{.*}}, %{{.*}} : vector<8xf32>
// CHECK: scf.yield
// CHECK: %[[P0:.*]] = arith.addf %[[ACC]]#0, %[[ACC]]#1 : vector<8xf32>
// CHECK: %[[P1:.*]] = arith.addf %[[ACC]]#2, %[[ACC]]#3 : vector<8xf32>
// CHECK: %[[P:.*]] = arith.addf %[[P0]], %[[P1]] : vector<8xf32>
// CHECK: %[[S:.*]] = vector.reduction <add>, %[[P]] : vector<8xf32> into f32
// CHECK: %[[I:.*]] = memref.load %[[OUT:.*]][%[[R]]] : memref<16xf32>
// CHECK: %[[T:.*]] = arith.addf %[[I]], %[[S]] : f32
// CHECK: memref.store %[[T]], %[[OUT]][%[[R]]] : memref<16xf32>
func.func @rows(%x: memref<16x64xf32>, %out: memref<16xf32>) {
  linalg.reduce ins(%x : memref<16x64xf32>) outs(%out : memref<16xf32>) dimensions = [1]
    (%a: f32, %b: f32) {
      %s = arith.addf %a, %b : f32
      linalg.yield %s : f32
    }
  return
}

// -----

// Over a leading dimension (a column max): 8 output lanes at a time, loaded, combined with each row in
// order, stored.
// CHECK-LABEL: func.func @cols
// CHECK-NOT: linalg.reduce
// CHECK: scf.for %[[C:.*]] = %{{.*}} to %c2
// CHECK: %[[J:.*]] = arith.muli %[[C]], %c8
// CHECK: %[[INIT:.*]] = vector.load %[[OUT:.*]][%[[J]]] : memref<16xf32>, vector<8xf32>
// CHECK: %[[M:.*]] = scf.for %[[I:.*]] = %{{.*}} to %c32{{.*}} step %c1{{.*}} iter_args(%[[A:.*]] = %[[INIT]])
// CHECK: %[[X:.*]] = vector.load %{{.*}}[%[[I]], %[[J]]] : memref<32x16xf32>, vector<8xf32>
// CHECK: arith.maximumf %[[A]], %[[X]] : vector<8xf32>
// CHECK: vector.store %[[M]], %[[OUT]][%[[J]]] : memref<16xf32>, vector<8xf32>
func.func @cols(%x: memref<32x16xf32>, %out: memref<16xf32>) {
  linalg.reduce ins(%x : memref<32x16xf32>) outs(%out : memref<16xf32>) dimensions = [0]
    (%a: f32, %b: f32) {
      %m = arith.maximumf %a, %b : f32
      linalg.yield %m : f32
    }
  return
}

// -----

// Left to convert-linalg-to-loops: a body of more than one op, i1 elements, a width no vector divides.
// CHECK-LABEL: func.func @kept
// CHECK-COUNT-3: linalg.reduce
// CHECK-NOT: vector.reduction
func.func @kept(%x: memref<8x8xf32>, %o: memref<8xf32>, %b: memref<8x8xi1>, %ob: memref<8xi1>,
                %y: memref<8x6xf32>) {
  linalg.reduce ins(%x : memref<8x8xf32>) outs(%o : memref<8xf32>) dimensions = [1]
    (%a: f32, %c: f32) {
      %m = arith.mulf %a, %a : f32
      %s = arith.addf %m, %c : f32
      linalg.yield %s : f32
    }
  linalg.reduce ins(%b : memref<8x8xi1>) outs(%ob : memref<8xi1>) dimensions = [1]
    (%a: i1, %c: i1) {
      %s = arith.ori %a, %c : i1
      linalg.yield %s : i1
    }
  linalg.reduce ins(%y : memref<8x6xf32>) outs(%o : memref<8xf32>) dimensions = [1]
    (%a: f32, %c: f32) {
      %s = arith.addf %a, %c : f32
      linalg.yield %s : f32
    }
  return
}
