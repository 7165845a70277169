// --list-passes names every tessera pass (with its options where its docstring gives them) and
// the first line of its docstring, then says that upstream passes are accepted too.
// RUN: tessera-opt --list-passes | FileCheck %s
// RUN: %python -m tessera.tools.opt --list-passes | FileCheck %s

// CHECK: Tessera passes:
// CHECK-DAG: {{^}}  tessera-lower-tile-to-cpu {{ +}}tile ops {{.*}} for the CPU JIT.
// CHECK: Upstream MLIR passes {{.*}} are also accepted
// CHECK-NOT: Traceback
