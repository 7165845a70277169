// Pass failures: the pass's diagnostics at their locations, exit 1, no output for the failing chunk.
// RUN: not tessera-opt %s --split-input-file -p 'one-shot-bufferize{bufferize-function-boundaries}' 2>&1 | FileCheck %s --check-prefix=FAIL
// RUN: not tessera-opt %s --split-input-file -p 'finalize-memref-to-llvm' 2>&1 | FileCheck %s --check-prefix=SILENT

// A pass that fails (one-shot-bufferize does not know tile.mma):
// FAIL-NOT: Traceback
// FAIL: pass_failure.mlir:[[# @LINE + 2]]:8: error: op was not bufferized
func.func @f(%a: tensor<16x32xf16>, %b: tensor<32x8xf16>) -> tensor<16x8xf32> {
  %0 = "tile.mma"(%a, %b) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<16x32xf16>, tensor<32x8xf16>) -> tensor<16x8xf32>
  return %0 : tensor<16x8xf32>
}

// -----
// A pass that emits an error but reports success: counted as a failure. (The MLIR Python bindings
// abort the process on this unless the context routes errors to a diagnostic handler.)
// SILENT-NOT: Traceback
// SILENT: pass_failure.mlir: error: conversion of memref memory space #gpu.address_space<workgroup> to integer address space failed
func.func @g() {
  %0 = memref.alloca() : memref<4xf32, #gpu.address_space<workgroup>>
  %c0 = arith.constant 0 : index
  %1 = memref.load %0[%c0] : memref<4xf32, #gpu.address_space<workgroup>>
  return
}
