// Bad pipelines give one clean `tessera-opt: error:` line and exit 1: no Python traceback and no
// MLIR abort.
// RUN: not tessera-opt %s -p 'bogus-pass' 2>&1 | FileCheck %s --check-prefix=UNKNOWN
// RUN: not tessera-opt %s -p 'tessera-lower-tile-to-cpu,tessera-no-such-pass' 2>&1 | FileCheck %s --check-prefix=UNKNOWN2
// RUN: not tessera-opt %s -p 'cse,,canonicalize' 2>&1 | FileCheck %s --check-prefix=SYNTAX
// RUN: not tessera-opt %s --pass-pipeline='builtin.module(cse' 2>&1 | FileCheck %s --check-prefix=UNBALANCED
// RUN: not tessera-opt %s -p 'func.func(tessera-lower-tile-to-cpu)' 2>&1 | FileCheck %s --check-prefix=NESTED
// RUN: not tessera-opt %s -p 'tessera-lower-tile-to-cpu{bogus=1}' 2>&1 | FileCheck %s --check-prefix=TOPTION
// RUN: not tessera-opt %s -p 'canonicalize{bogus=1}' 2>&1 | FileCheck %s --check-prefix=UOPTION

// UNKNOWN-NOT: Traceback
// UNKNOWN: tessera-opt: error: bad upstream pass pipeline 'bogus-pass': {{.*}}'bogus-pass' does not refer to a registered pass or pass pipeline
// UNKNOWN-NOT: Traceback
// UNKNOWN2: tessera-opt: error: {{.*}}'tessera-no-such-pass' does not refer to a registered pass
// SYNTAX: tessera-opt: error: cannot parse pass pipeline 'cse,,canonicalize'
// SYNTAX-NOT: Traceback
// UNBALANCED: tessera-opt: error: cannot parse pass pipeline 'builtin.module(cse'
// NESTED: tessera-opt: error: tessera pass 'tessera-lower-tile-to-cpu' must run on the module, not nested in 'func.func'
// TOPTION: tessera-opt: error: pass 'tessera-lower-tile-to-cpu' has no option 'bogus'
// UOPTION: tessera-opt: error: bad upstream pass pipeline 'canonicalize{bogus=1}'
// UOPTION-NOT: Traceback

func.func @f() {
  return
}
