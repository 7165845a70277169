// tessera-lower-tile-to-cpu: tile ops -> tensor/linalg/scf/memref, program ids as extra arguments,
// and two C-interface entries: @<name>_range runs the programs in a range of linear ids, @<name>_grid all.
// RUN: tessera-opt %s --split-input-file -p tessera-lower-tile-to-cpu | FileCheck %s
// RUN: tessera-opt %s --split-input-file -p tessera-lower-tile-to-cpu | FileCheck %s --check-prefix=GONE

// No tile op or window type survives the pass.
// GONE-NOT: "tile.
// GONE-NOT: !tile.window

!g = memref<?x?xf32, strided<[?, ?], offset: ?>>
!w = !tile.window<array<i64: 16, 16>, f32>
!s = memref<16x16xf32, #gpu.address_space<workgroup>>

// The kernel gets six index arguments (program id x/y/z, number of programs x/y/z) and turns private.
// CHECK-LABEL: func.func private @gemm_row(
// CHECK-SAME: %[[A:[^:]*]]: memref<?x?xf32, strided<[?, ?], offset: ?>>, %[[B:[^:]*]]: memref<?x?xf32, strided<[?, ?], offset: ?>>,
// CHECK-SAME: %[[C:[^:]*]]: memref<?x?xf32, strided<[?, ?], offset: ?>>, %[[ALPHA:[^:]*]]: f32,
// CHECK-SAME: %[[PX:[^:]*]]: index, %[[PY:[^:]*]]: index, %[[PZ:[^:]*]]: index, %[[NX:[^:]*]]: index, %[[NY:[^:]*]]: index, %[[NZ:[^:]*]]: index)
// CHECK-NOT: tessera.kernel
// Shared buffers become allocas at function entry.
// CHECK-NEXT: %[[BUF:.*]] = memref.alloca() : memref<16x16xf32>
// CHECK: %[[ROW:.*]] = arith.muli %[[PX]], %{{.*}} : index
// A bounds-checked load (cpu_vector_io): a loop over the tile's rows and 16-lane chunks. A chunk of a row in
// bounds of a unit-stride array is one vector transfer, unmasked when the whole chunk is inside the row,
// masked (zero padding) when it crosses the row's end; otherwise its lanes are loaded one by one.
// CHECK: %[[UNIT:.*]] = memref.reinterpret_cast %[[A]] to {{.*}} strides: [%{{.*}}, 1]
// CHECK: %[[TA:.*]] = scf.for {{.*}} -> (tensor<16x16xf32>)
// CHECK: %[[GI:.*]] = arith.addi %[[ROW]], %{{.*}} : index
// CHECK-NEXT: arith.cmpi ult, %[[GI]], %{{.*}} : index
// CHECK: vector.transfer_read %[[UNIT]][%[[GI]], %{{.*}}], %{{.*}} {in_bounds = [true]} : {{.*}}, vector<16xf32>
// CHECK: vector.transfer_read %[[UNIT]][%[[GI]], %{{.*}}], %{{.*}} : {{.*}}, vector<16xf32>
// CHECK: memref.load %[[A]][%[[GI]], %{{.*}}]
// CHECK: vector.insert
// CHECK: vector.transfer_write %{{.*}} {in_bounds = [true]} : vector<16xf32>, tensor<16x16xf32>
// The async copy: a loop nest over the buffer, zero-filling out-of-bounds lanes; num_programs(1)
// is the fifth extra argument.
// CHECK: scf.for %[[CI:.*]] = %{{.*}} to %{{.*}} step
// CHECK: scf.for %[[CJ:.*]] = %{{.*}} to %{{.*}} step
// CHECK: arith.addi %[[NY]], %[[CJ]] : index
// CHECK: scf.if %{{.*}} -> (f32)
// CHECK: memref.load %[[B]]
// CHECK: memref.store %{{.*}}, %[[BUF]][%[[CI]], %[[CJ]]] : memref<16x16xf32>
// Commit/wait/barrier vanish; reading the buffer as a tile is a tensor.generate of loads.
// CHECK: %[[TB:.*]] = tensor.generate
// CHECK: memref.load %[[BUF]]
// tile.mma: linalg.matmul into a zero-filled f32 accumulator.
// CHECK: %[[ZERO:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%{{.*}} : tensor<16x16xf32>)
// CHECK-NEXT: %[[MM:.*]] = linalg.matmul ins(%[[TA]], %[[TB]] : tensor<16x16xf32>, tensor<16x16xf32>) outs(%[[ZERO]] : tensor<16x16xf32>)
// tile.reduce max: linalg.reduce from -inf.
// CHECK: arith.constant 0xFF800000 : f32
// CHECK: %[[RED:.*]] = linalg.reduce ins(%[[MM]] : tensor<16x16xf32>) outs(%{{.*}} : tensor<16xf32>) dimensions = [1]
// CHECK: arith.maximumf
// CHECK: linalg.yield
// tile.broadcast of a row: tensor.generate extracting along the trailing dim; of a scalar: tensor.splat.
// CHECK: tensor.generate
// CHECK-NEXT: ^bb0(%{{.*}}: index, %[[BJ:.*]]: index):
// CHECK-NEXT: tensor.extract %[[RED]][%[[BJ]]] : tensor<16xf32>
// CHECK: tensor.splat %[[ALPHA]] : tensor<16x16xf32>
// tile.arange: tensor.generate of index_casts.
// CHECK: tensor.generate
// CHECK-NEXT: ^bb0(%[[K:.*]]: index):
// CHECK-NEXT: arith.index_cast %[[K]] : index to i32
// The masked store: a loop nest with an scf.if on bounds and mask.
// CHECK: scf.for
// CHECK: scf.for
// CHECK: tensor.extract %{{.*}} : tensor<16x16xi1>
// CHECK: %[[OK:.*]] = arith.andi
// CHECK-NEXT: scf.if %[[OK]] {
// CHECK-NEXT: %[[V:.*]] = tensor.extract
// CHECK-NEXT: memref.store %[[V]], %[[C]]
// CHECK: return
// The range entry runs the programs with linear ids in [first, last), x fastest: x = id % gx,
// y = (id / gx) % gy, z = id / gx / gy.
// CHECK-LABEL: func.func @gemm_row_range(
// CHECK-SAME: f32, %[[GX:[^:]*]]: index, %[[GY:[^:]*]]: index, %[[GZ:[^:]*]]: index, %[[FIRST:[^:]*]]: index, %[[LAST:[^:]*]]: index) attributes {llvm.emit_c_interface}
// CHECK: scf.for %[[ID:.*]] = %[[FIRST]] to %[[LAST]] step
// CHECK-NEXT: %[[X:.*]] = arith.remui %[[ID]], %[[GX]] : index
// CHECK-NEXT: %[[YZ:.*]] = arith.divui %[[ID]], %[[GX]] : index
// CHECK-NEXT: %[[Y:.*]] = arith.remui %[[YZ]], %[[GY]] : index
// CHECK-NEXT: %[[Z:.*]] = arith.divui %[[YZ]], %[[GY]] : index
// CHECK-NEXT: func.call @gemm_row(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[X]], %[[Y]], %[[Z]], %[[GX]], %[[GY]], %[[GZ]])
// The grid entry runs all gx * gy * gz programs through it.
// CHECK-LABEL: func.func @gemm_row_grid(
// CHECK-SAME: f32, %[[GX:[^:]*]]: index, %[[GY:[^:]*]]: index, %[[GZ:[^:]*]]: index) attributes {llvm.emit_c_interface}
// CHECK-NEXT: %[[XY:.*]] = arith.muli %[[GX]], %[[GY]] : index
// CHECK-NEXT: %[[N:.*]] = arith.muli %[[XY]], %[[GZ]] : index
// CHECK-NEXT: %[[C0:.*]] = arith.constant 0 : index
// CHECK-NEXT: call @gemm_row_range(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[GX]], %[[GY]], %[[GZ]], %[[C0]], %[[N]])
func.func @gemm_row(%a: !g, %b: !g, %c: !g, %alpha: f32) attributes {tessera.kernel} {
  %pid = "tile.program_id"() {axis = 0 : i32} : () -> index
  %np = "tile.num_programs"() {axis = 1 : i32} : () -> index
  %c0 = arith.constant 0 : index
  %c16 = arith.constant 16 : index
  %row = arith.muli %pid, %c16 : index
  %buf = "tile.alloc_shared"() {swizzle = "none"} : () -> !s
  %wa = "tile.view"(%a, %row, %c0) {sizes = array<i64: 16, 16>, squeeze = array<i64: 0, 0>} : (!g, index, index) -> !w
  %ta = "tile.load"(%wa) {operandSegmentSizes = array<i32: 1, 0, 0>} : (!w) -> tensor<16x16xf32>
  %wb = "tile.view"(%b, %c0, %np) {sizes = array<i64: 16, 16>, squeeze = array<i64: 0, 0>} : (!g, index, index) -> !w
  "tile.cp_async"(%buf, %wb) {bypass_l1 = false} : (!s, !w) -> ()
  "tile.cp_commit_group"() : () -> ()
  "tile.cp_wait_group"() {pending = 0 : i32} : () -> ()
  "tile.barrier"() : () -> ()
  %tb = "tile.load"(%buf) {operandSegmentSizes = array<i32: 1, 0, 0>} : (!s) -> tensor<16x16xf32>
  %acc = "tile.mma"(%ta, %tb) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<16x16xf32>, tensor<16x16xf32>) -> tensor<16x16xf32>
  %rs = "tile.reduce"(%acc) {kind = "max", axis = 1 : i64} : (tensor<16x16xf32>) -> tensor<16xf32>
  %bc = "tile.broadcast"(%rs) : (tensor<16xf32>) -> tensor<16x16xf32>
  %sc = "tile.broadcast"(%alpha) : (f32) -> tensor<16x16xf32>
  %d = arith.subf %acc, %bc : tensor<16x16xf32>
  %e = arith.mulf %d, %sc : tensor<16x16xf32>
  %idx = "tile.arange"() {start = 0 : i64, end = 16 : i64} : () -> tensor<16xi32>
  %lim = arith.constant dense<8> : tensor<16xi32>
  %m1 = arith.cmpi slt, %idx, %lim : tensor<16xi32>
  %m = "tile.broadcast"(%m1) : (tensor<16xi1>) -> tensor<16x16xi1>
  %wc = "tile.view"(%c, %row, %c0) {sizes = array<i64: 16, 16>, squeeze = array<i64: 0, 0>} : (!g, index, index) -> !w
  "tile.store"(%wc, %e, %m) {operandSegmentSizes = array<i32: 1, 1, 1>} : (!w, tensor<16x16xf32>, tensor<16x16xi1>) -> ()
  return
}

// -----
// Rank-0 windows: a scalar masked load with `other` is an scf.if (no tensor.generate) and a scalar
// store; program_id(2) is the third extra argument.
!g = memref<?xf32, strided<[?], offset: ?>>
!e = !tile.window<array<i64>, f32>

// CHECK-LABEL: func.func private @scalar_copy(
// CHECK-SAME: %[[X:[^:]*]]: memref<?xf32, strided<[?], offset: ?>>, %[[Y:[^:]*]]: memref<?xf32, strided<[?], offset: ?>>, %[[N:[^:]*]]: index,
// CHECK-SAME: %{{[^:]*}}: index, %{{[^:]*}}: index, %[[PZ:[^:]*]]: index,
// CHECK-NOT: tensor.generate
// CHECK: %[[OTHER:.*]] = arith.constant -1.000000e+00 : f32
// CHECK: %[[P:.*]] = arith.cmpi ult, %[[PZ]], %[[N]] : index
// CHECK: %[[INB:.*]] = arith.andi %{{.*}}, %[[P]] : i1
// CHECK-NEXT: %[[V:.*]] = scf.if %[[INB]] -> (f32) {
// CHECK-NEXT: %[[L:.*]] = memref.load %[[X]][%[[PZ]]]
// CHECK-NEXT: scf.yield %[[L]] : f32
// CHECK-NEXT: } else {
// CHECK-NEXT: scf.yield %[[OTHER]] : f32
// CHECK: scf.if %{{.*}} {
// CHECK-NEXT: memref.store %[[V]], %[[Y]][%[[PZ]]]
// Functions without tessera.kernel are left alone (the wrapper is appended after them).
// CHECK-LABEL: func.func @helper(%{{.*}}: f32) -> f32
// CHECK-NEXT: return
// CHECK-LABEL: func.func @scalar_copy_range(
// CHECK: func.call @scalar_copy(
// CHECK-LABEL: func.func @scalar_copy_grid(
// CHECK: call @scalar_copy_range(
func.func @scalar_copy(%x: !g, %y: !g, %n: index) attributes {tessera.kernel} {
  %pid = "tile.program_id"() {axis = 2 : i32} : () -> index
  %ex = "tile.view"(%x, %pid) {sizes = array<i64: 1>, squeeze = array<i64: 1>} : (!g, index) -> !e
  %other = arith.constant -1.0 : f32
  %p = arith.cmpi ult, %pid, %n : index
  %v = "tile.load"(%ex, %p, %other) {operandSegmentSizes = array<i32: 1, 1, 1>} : (!e, i1, f32) -> f32
  %ey = "tile.view"(%y, %pid) {sizes = array<i64: 1>, squeeze = array<i64: 1>} : (!g, index) -> !e
  "tile.store"(%ey, %v) {operandSegmentSizes = array<i32: 1, 1, 0>} : (!e, f32) -> ()
  return
}
func.func @helper(%a: f32) -> f32 {
  return %a : f32
}

// -----
// Integer division: a divisor that may be 0 (or -1) is replaced by 1 there, selects give x // 0 == -1
// and x % 0 == x, and each way to fault (by zero; INT_MIN // -1) stores its 1-based code into the fault
// flag, a trailing memref<1xi64> argument, unless an earlier one is there. The codes' locations are the
// module attribute tessera.int_faults. A constant divisor other than 0 and -1 is left alone.
// Shared buffers past 64 KiB are heap allocations.
!g = memref<?xi32, strided<[?], offset: ?>>
!w = !tile.window<array<i64: 8>, i32>
!s = memref<128x256xf32, #gpu.address_space<workgroup>>

// CHECK: module attributes {tessera.int_faults = [
// CHECK-SAME: ["loc(\22{{.*}}lower_tile_to_cpu.mlir\22:[[LDIV:[0-9]+]]:{{[0-9]+}})", "integer division by zero"],
// CHECK-SAME: ["loc(\22{{.*}}lower_tile_to_cpu.mlir\22:[[LDIV]]:{{[0-9]+}})", "integer overflow: -2147483648 // -1 does not fit i32"],
// CHECK-SAME: ["loc(\22{{.*}}lower_tile_to_cpu.mlir\22:{{[0-9]+}}:{{[0-9]+}})", "integer modulo by zero"]]}
// CHECK-LABEL: func.func private @divide(
// CHECK-SAME: %[[N:[^:]*]]: index, %[[PX:[^:]*]]: index, {{.*}}, %[[FLAG:[^:]*]]: memref<1xi64>)
// CHECK-NEXT: memref.alloc() : memref<128x256xf32>
// CHECK: %[[A:.*]] = scf.for {{.*}} -> (tensor<8xi32>)
// CHECK: %[[B:.*]] = scf.for {{.*}} -> (tensor<8xi32>)
// The checks and the division are elementwise: each group of them is one linalg.generic.
// CHECK: %[[G:.*]]:4 = linalg.generic {{.*}} ins(%[[B]], %[[A]] : tensor<8xi32>, tensor<8xi32>)
// CHECK-NEXT: ^bb0(%[[BI:[^:]*]]: i32, %[[AI:[^:]*]]: i32,
// CHECK: %[[ZERO:.*]] = arith.cmpi eq, %[[BI]], %{{.*}} : i32
// CHECK: %[[M1:.*]] = arith.cmpi eq, %[[BI]], %{{.*}} : i32
// CHECK: %[[AMIN:.*]] = arith.cmpi eq, %[[AI]], %{{.*}} : i32
// CHECK: %[[OVF:.*]] = arith.andi %[[AMIN]], %[[M1]] : i1
// CHECK: %[[BAD:.*]] = arith.ori %[[ZERO]], %[[OVF]] : i1
// CHECK: arith.extui %[[ZERO]] : i1 to i8
// CHECK: linalg.yield %[[ZERO]], %[[BAD]],
// CHECK: linalg.reduce ins(%[[G]]#2
// CHECK: arith.maxui
// CHECK: %[[OLD:.*]] = memref.load %[[FLAG]]
// CHECK: %[[FIRST:.*]] = arith.andi %{{.*}}, %{{.*}} : i1
// CHECK: %[[CODE:.*]] = arith.select %[[FIRST]], %c1_i64, %[[OLD]] : i64
// CHECK: memref.store %[[CODE]], %[[FLAG]]
// CHECK: arith.select %{{.*}}, %c2_i64, %{{.*}} : i64
// CHECK: %[[RZ:.*]] = arith.cmpi eq, %[[PX]], %{{.*}} : index
// CHECK: arith.select %{{.*}}, %c3_i64, %{{.*}} : i64
// CHECK: %[[RS:.*]] = arith.select %{{.*}}, %{{.*}}, %[[PX]] : index
// CHECK: %[[R:.*]] = arith.remsi %[[N]], %[[RS]] : index
// CHECK: arith.select %[[RZ]], %[[N]], %[[R]] : index
// CHECK: linalg.generic {{.*}} ins(%[[G]]#1, %[[B]], %[[A]], %[[G]]#0 :
// CHECK-NEXT: ^bb0(%[[BADI:[^:]*]]: i1, %[[BJ:[^:]*]]: i32, %[[AJ:[^:]*]]: i32, %[[ZJ:[^:]*]]: i1,
// CHECK: %[[SAFE:.*]] = arith.select %[[BADI]], %{{.*}}, %[[BJ]] : i32
// CHECK: %[[Q:.*]] = arith.floordivsi %[[AJ]], %[[SAFE]] : i32
// CHECK: %[[QF:.*]] = arith.select %[[ZJ]], %{{.*}}, %[[Q]] : i32
// CHECK: arith.floordivsi %[[QF]], %{{.*}} : i32
// The entries pass the flag through, after the grid (and the range).
// CHECK-LABEL: func.func @divide_range(
// CHECK-SAME: %{{[^:]*}}: index, %{{[^:]*}}: index, %{{[^:]*}}: index, %{{[^:]*}}: index, %{{[^:]*}}: index, %[[F:[^:]*]]: memref<1xi64>) attributes {llvm.emit_c_interface}
// CHECK: func.call @divide({{.*}}, %[[F]])
// CHECK-LABEL: func.func @divide_grid(
// CHECK-SAME: %{{[^:]*}}: index, %{{[^:]*}}: index, %{{[^:]*}}: index, %[[F:[^:]*]]: memref<1xi64>) attributes {llvm.emit_c_interface}
// CHECK: call @divide_range({{.*}}, %[[F]])
func.func @divide(%x: !g, %y: !g, %n: index) attributes {tessera.kernel} {
  %c0 = arith.constant 0 : index
  %buf = "tile.alloc_shared"() {swizzle = "none"} : () -> !s
  %wx = "tile.view"(%x, %c0) {sizes = array<i64: 8>, squeeze = array<i64: 0>} : (!g, index) -> !w
  %wy = "tile.view"(%y, %c0) {sizes = array<i64: 8>, squeeze = array<i64: 0>} : (!g, index) -> !w
  %a = "tile.load"(%wx) {operandSegmentSizes = array<i32: 1, 0, 0>} : (!w) -> tensor<8xi32>
  %b = "tile.load"(%wy) {operandSegmentSizes = array<i32: 1, 0, 0>} : (!w) -> tensor<8xi32>
  %q = arith.floordivsi %a, %b : tensor<8xi32>
  %c4 = arith.constant 4 : i32
  %four = "tile.broadcast"(%c4) : (i32) -> tensor<8xi32>
  %q4 = arith.floordivsi %q, %four : tensor<8xi32>
  %pid = "tile.program_id"() {axis = 0 : i32} : () -> index
  %r = arith.remsi %n, %pid : index
  %rt = "tile.broadcast"(%r) : (index) -> tensor<8xindex>
  %ri = arith.index_cast %rt : tensor<8xindex> to tensor<8xi32>
  %s = arith.addi %q4, %ri : tensor<8xi32>
  "tile.store"(%wy, %s) {operandSegmentSizes = array<i32: 1, 1, 0>} : (!w, tensor<8xi32>) -> ()
  return
}
