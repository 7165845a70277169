// RUN: tessera-opt %s -p tessera-expand-fp8 | FileCheck %s

// fp8 (E4M3FN) conversions become integer bit manipulation: no arith.extf/truncf on f8 remains,
// the bytes are reinterpreted with arith.bitcast, truncation rounds with math.roundeven for
// subnormals and saturates to the NaN code 0x7F (127); vectors are handled like scalars.
// CHECK-LABEL: func.func @convert
// CHECK-NOT: arith.extf %{{.*}} : f8E4M3FN
// CHECK: arith.bitcast %arg0 : f8E4M3FN to i8
// CHECK: arith.constant 0.001953125 : f32
// CHECK: math.roundeven
// CHECK: arith.constant 127 : i32
// CHECK: arith.bitcast %{{.*}} : i8 to f8E4M3FN
// CHECK: arith.bitcast %arg2 : vector<4xf8E4M3FN> to vector<4xi8>
// CHECK-NOT: arith.truncf %{{.*}} to f8E4M3FN
func.func @convert(%a: f8E4M3FN, %b: f32, %v: vector<4xf8E4M3FN>) -> (f32, f8E4M3FN, vector<4xf32>) {
  %x = arith.extf %a : f8E4M3FN to f32
  %y = arith.truncf %b : f32 to f8E4M3FN
  %z = arith.extf %v : vector<4xf8E4M3FN> to vector<4xf32>
  return %x, %y, %z : f32, f8E4M3FN, vector<4xf32>
}
