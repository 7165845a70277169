// The expected-diagnostics protocol of --verify-diagnostics (implemented by tessera-opt):
// @+N / @-N / @above / @below, expected-note, -re patterns; exit 0 when everything matches.
// RUN: tessera-opt %s --split-input-file --verify-diagnostics

func.func @offsets() {
  %0 = "tile.program_id"() {axis = 4 : i32} : () -> index
  // expected-error@-1 {{axis must be 0, 1 or 2, got 4}}
  // expected-error@+3 {{got 5}}


  %1 = "tile.num_programs"() {axis = 5 : i32} : () -> index
  return
}

// -----
func.func @above_below() {
  "tile.cp_wait_group"() {pending = -1 : i32} : () -> ()
  // expected-error@above {{pending must be >= 0, got -1}}
  // expected-error@below {{pending must be >= 0, got -2}}
  "tile.cp_wait_group"() {pending = -2 : i32} : () -> ()
  return
}

// -----
func.func @same_line() {
  %0 = "tile.program_id"() {axis = 9 : i32} : () -> index // expected-error {{got 9}}
  return
}

// -----
func.func @regex() {
  // expected-error-re@+1 {{axis must be 0, 1 or 2, got {{[0-9]+}}}}
  %0 = "tile.program_id"() {axis = 12 : i32} : () -> index
  return
}

// -----
// expected-note@+1 {{see existing symbol definition here}}
func.func @dup() {
  return
}
// expected-error@+1 {{redefinition of symbol named 'dup'}}
func.func @dup() {
  return
}

// -----
// A chunk without diagnostics and without designators is fine too.
func.func @clean() {
  return
}
