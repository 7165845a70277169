// Bad pipelines give one clean `tessera-opt: error:` line and exit 1: no Python traceback and no
// MLIR abort.
// RUN: not tessera-opt %s -p 'bogus-pass' 2>&1 | FileCheck %s --check-prefix=UNKNOWN
// RUN: not tessera-opt %s -p 'tessera-lower-tile-to-cpu,tessera-no-such-pass' 2>&1 | FileCheck %s --check-prefix=UNKNOWN2
// RUN: not tessera-opt %s -p 'cse,,canonicalize' 2>&1 | FileCheck %s --check-prefix=SYNTAX
// RUN: not tessera-opt %s --pass-pipeline='builtin.module(cse' 2>&1 | FileCheck %s --check-prefix=UNBALANCED
// RUN: not tessera-opt %s -p 'func.func(tessera-lower-tile-to-cpu)' 2>&1 | FileCheck %s --check-prefix=NESTED
// RUN: not tessera-opt %s -p 'tessera-lower-tile-to-cpu{bogus=1}' 2>&1 | FileCheck %s --check-prefix=TOPTION
// RUN: not tessera-opt %s -p 'canonicalize{bogus=1}' 2>&1 | FileCheck %s --check-prefix=UOPTION
// Pass options are parsed and range-checked by the registry, never inside the pass:
// RUN: not tessera-opt %s -p 'tessera-lower-tile-to-gpu{num_warps=abc}' 2>&1 | FileCheck %s --check-prefix=WARPS
// RUN: not tessera-opt %s -p 'tessera-lower-tile-to-gpu{num_warps=0}' 2>&1 | FileCheck %s --check-prefix=WARPS0
// RUN: not tessera-opt %s -p 'tessera-lower-tile-to-gpu{arch=sm_70}' 2>&1 | FileCheck %s --check-prefix=ARCH
// RUN: not tessera-opt %s -p 'tessera-lower-tile-to-gpu{arch=}' 2>&1 | FileCheck %s --check-prefix=ARCH
// RUN: not tessera-opt %s -p 'tessera-prune-sparse-deltas{threshold=abc}' 2>&1 | FileCheck %s --check-prefix=THRESHOLD
// RUN: tessera-opt %s -p 'tessera-lower-tile-to-gpu{arch=sm_90 num_warps=8 persistent}' | FileCheck %s --check-prefix=ALIAS
// Options of upstream passes that would abort inside LLVM are checked too:
// RUN: not tessera-opt %s -p 'nvvm-attach-target{chip=sm_80 features=abc}' 2>&1 | FileCheck %s --check-prefix=FEATURES

// UNKNOWN-NOT: Traceback
// UNKNOWN: tessera-opt: error: bad upstream pass pipeline 'bogus-pass': {{.*}}'bogus-pass' does not refer to a registered pass or pass pipeline
// UNKNOWN-NOT: Traceback
// UNKNOWN2: tessera-opt: error: {{.*}}'tessera-no-such-pass' does not refer to a registered pass
// SYNTAX: tessera-opt: error: cannot parse pass pipeline 'cse,,canonicalize': expected a pass name at column 5
// SYNTAX-NOT: Traceback
// UNBALANCED: tessera-opt: error: cannot parse pass pipeline 'builtin.module(cse'
// NESTED: tessera-opt: error: tessera pass 'tessera-lower-tile-to-cpu' must run on the module, not nested in 'func.func'
// TOPTION: tessera-opt: error: pass 'tessera-lower-tile-to-cpu' has no option 'bogus'
// UOPTION: tessera-opt: error: bad upstream pass pipeline 'canonicalize{bogus=1}'
// UOPTION-NOT: Traceback
// WARPS: tessera-opt: error: pass 'tessera-lower-tile-to-gpu': option num_warps='abc' is not accepted: num_warps takes an integer from 1 to 32
// WARPS0: tessera-opt: error: pass 'tessera-lower-tile-to-gpu': option num_warps='0' is not accepted
// ARCH: tessera-opt: error: pass 'tessera-lower-tile-to-gpu': option arch={{.*}} is not accepted: arch takes one of sm_80, sm_90a, sm_90
// THRESHOLD: tessera-opt: error: pass 'tessera-prune-sparse-deltas': option threshold='abc' is not accepted: threshold takes a finite number >= 0.0
// ALIAS: func.func @f
// FEATURES: tessera-opt: error: pass 'nvvm-attach-target': option features='abc' is not accepted: features takes comma-separated features each starting with + or -

func.func @f() {
  return
}
