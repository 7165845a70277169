// tessera-cpu-scratch: a program's static entry-block allocations become views of one scratch argument,
// allocated once by each launch entry that calls the program.
// RUN: not tessera-opt %s --split-input-file -p tessera-cpu-scratch 2>/dev/null | FileCheck %s
// RUN: tessera-opt %s --split-input-file -p tessera-cpu-scratch --verify-diagnostics > /dev/null

// 4096 + 2048 bytes (the second rounded up to 64) plus a 4-byte tile: offsets 0, 4096, 6144, 6208 bytes
// in. The dynamic allocation and the one inside a loop stay on the heap.
// CHECK-LABEL: func.func private @program(
// CHECK-SAME: %[[N:[^:]*]]: index, %[[S:[^:]*]]: memref<?xi8>)
// CHECK: memref.view %[[S]][%c0{{.*}}][] : memref<?xi8> to memref<32x32xf32>
// CHECK: memref.view %[[S]][%c4096{{.*}}][] : memref<?xi8> to memref<32x32xbf16>
// CHECK: memref.view %[[S]][%c6144{{.*}}][] : memref<?xi8> to memref<1xf32>
// CHECK: memref.alloc(%[[N]]) : memref<?xf32>
// CHECK: scf.for
// CHECK-NEXT: memref.alloc() : memref<8xf32>
// CHECK-LABEL: func.func @program_grid(
// CHECK-NEXT: %[[BUF:.*]] = memref.alloc() {alignment = 64 : i64} : memref<6208xi8>
// CHECK-NEXT: %[[DYN:.*]] = memref.cast %[[BUF]] : memref<6208xi8> to memref<?xi8>
// CHECK: func.call @program(%{{.*}}, %[[DYN]]) : (index, memref<?xi8>) -> ()
func.func private @program(%n: index) {
  %a = memref.alloc() : memref<32x32xf32>
  %b = memref.alloc() : memref<32x32xbf16>
  %c = memref.alloc() : memref<1xf32>
  %d = memref.alloc(%n) : memref<?xf32>
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  scf.for %i = %c0 to %n step %c1 {
    %e = memref.alloc() : memref<8xf32>
  }
  return
}
func.func @program_grid(%n: index) attributes {llvm.emit_c_interface} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  scf.for %i = %c0 to %n step %c1 {
    func.call @program(%i) : (index) -> ()
  }
  return
}

// -----

// A function no launch entry calls is left alone.
// CHECK-LABEL: func.func private @helper()
// CHECK-NEXT: memref.alloc() : memref<4xf32>
func.func private @helper() {
  %a = memref.alloc() : memref<4xf32>
  return
}

// -----

// An entry calling another entry (`_grid` runs the whole grid through `_range`) keeps its signature: the
// scratch is allocated by the entry that calls the program.
// CHECK-LABEL: func.func @p_range()
// CHECK-NEXT: memref.alloc() {alignment = 64 : i64} : memref<64xi8>
// CHECK-LABEL: func.func @p_grid()
// CHECK-NEXT: call @p_range() : () -> ()
func.func private @p() {
  %a = memref.alloc() : memref<4xf32>
  return
}
func.func @p_range() attributes {llvm.emit_c_interface} {
  func.call @p() : () -> ()
  return
}
func.func @p_grid() attributes {llvm.emit_c_interface} {
  func.call @p_range() : () -> ()
  return
}

// -----

// Past the 64 MiB budget of tile buffers per program: an OutOfResources at the allocation.
func.func private @huge() {
  %a = memref.alloc() : memref<1024x1024xf32>
  // expected-error@+1 {{a program of this kernel needs more than 67108864 bytes of tiles}}
  %b = memref.alloc() : memref<4096x4096xf32>
  return
}
func.func @huge_grid() attributes {llvm.emit_c_interface} {
  func.call @huge() : () -> ()
  return
}
