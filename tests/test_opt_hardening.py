"""tessera-opt never aborts or fails silently (issue 16): one regression test per failure found by
fuzzing and probing. Every case runs the real `tessera-opt` in a subprocess with a time bound and
expects exit 0 or exit 1 with a clear error — never a signal, a traceback, an empty stderr or an
"internal error"."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LIT = REPO / "lit_tests"
OPT = [sys.executable, "-m", "tessera.tools.opt"]


def opt(tmp_path, text, *args, timeout=120):
    src = tmp_path / "input.mlir"
    src.write_text(text)
    r = subprocess.run(OPT + [str(src), *args], capture_output=True, text=True, timeout=timeout,
                       cwd=REPO)
    assert r.returncode >= 0, f"tessera-opt died of signal {-r.returncode}: {r.stderr[-2000:]}"
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr[-2000:]
    return r


def rejected(tmp_path, text, *args, expect):
    r = opt(tmp_path, text, *args)
    assert r.returncode == 1, (r.returncode, r.stderr[-2000:])
    assert expect in r.stderr, r.stderr[-2000:]
    return r


KERNEL = """func.func @f(%x: memref<?xf32>) attributes {tessera.kernel} {
  return
}
"""


def test_custom_syntax_of_a_tile_op_is_named(tmp_path):
    text = 'func.func @f() attributes {tessera.kernel} {\n  %a = tile.program_id 0 : index\n  return\n}\n'
    r = rejected(tmp_path, text, expect="custom assembly of 'tile.program_id' cannot be parsed")
    assert "input.mlir:2:8:" in r.stderr and '"tile.program_id"' in r.stderr


def test_unparsable_input_always_says_something(tmp_path):
    r = rejected(tmp_path, "func.func @f( {\n", expect="error")
    assert r.stderr.strip()


def test_thousands_of_nested_modules(tmp_path):
    n = 4000
    r = rejected(tmp_path, "module {" * n + "}" * n, expect="deeper than 256 levels")
    assert len(r.stderr) < 2000  # the long line is shown around the column, not whole


def test_deeply_nested_attribute(tmp_path):
    text = KERNEL.replace("attributes {", "attributes {deep = " + "[" * 20000 + "1" + "]" * 20000 + ", ")
    rejected(tmp_path, text, "-p", "convert-arith-to-llvm", expect="deeper than 256 levels")


def test_nesting_within_the_limit_still_works(tmp_path):
    n = 200
    r = opt(tmp_path, "module {" * n + "}" * n, "-p", "canonicalize,cse")
    assert r.returncode == 0, r.stderr


def test_dense_array_of_index(tmp_path):
    text = 'func.func @f() attributes {x = array<index: 1, 2>} {\n  return\n}\n'
    rejected(tmp_path, text, expect="'array<index: ...>' is not supported")


def test_element_count_overflow(tmp_path):
    text = "func.func @f(%a: tensor<99999999999x99999999999x9999999999xf32>) {\n  return\n}\n"
    rejected(tmp_path, text, "-p", "canonicalize", expect="more than fit in a 64-bit count")


def test_pipeline_nested_past_the_limit(tmp_path):
    deep = "builtin.module(" * 300 + "cse" + ")" * 300
    rejected(tmp_path, KERNEL, "-p", deep, expect="pipelines nest deeper than 32 levels")


def test_lower_graph_to_tile_without_a_graph_function(tmp_path):
    r = opt(tmp_path, "module {\n}\n", "-p", "tessera-lower-graph-to-tile")
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("option,expect", [
    ("tessera-lower-tile-to-gpu{num_warps=abc}", "num_warps takes an integer from 1 to 32"),
    ("tessera-lower-tile-to-gpu{num_warps=4.5}", "num_warps='4.5' is not accepted"),
    ("tessera-lower-tile-to-gpu{num_warps=0}", "num_warps='0' is not accepted"),
    ("tessera-lower-tile-to-gpu{num_stages=0}", "num_stages takes an integer from 1 to 16"),
    ("tessera-lower-tile-to-gpu{arch=sm_70}", "arch takes one of sm_80, sm_90a"),
    ("tessera-lower-tile-to-gpu{arch=}", "arch='' is not accepted"),
    ("tessera-lower-tile-to-gpu{persistent=maybe}", "persistent takes 0, 1, true or false"),
    ("tessera-place-layout-conversions{num_warps=99999999999999999999}", "num_warps takes an integer"),
    ("tessera-prune-sparse-deltas{threshold=abc}", "threshold takes a finite number >= 0.0"),
    ("tessera-prune-sparse-deltas{threshold=inf}", "threshold='inf' is not accepted"),
    ("tessera-use-wgmma{bogus=1}", "has no option 'bogus'"),
    ("nvvm-attach-target{chip=abc}", "chip takes one of sm_50"),
    ("nvvm-attach-target{chip=sm_80 O=9}", "O takes an integer from 0 to 3"),
    ("gpu-module-to-binary{format=0}", "format takes one of offloading"),
])
def test_pass_options_are_checked_by_the_registry(tmp_path, option, expect):
    rejected(tmp_path, KERNEL, "-p", option, expect=expect)


def test_sm_90_is_sm_90a(tmp_path):
    text = (LIT / "passes" / "lower_tile_to_gpu.mlir").read_text()
    r = opt(tmp_path, text, "--split-input-file", "-p", "tessera-lower-tile-to-gpu{arch=sm_90 num_warps=4}")
    assert r.returncode == 0 and 'tessera.arch = "sm_90a"' in r.stdout, r.stderr


def test_tile_verifier_on_element_type_none(tmp_path):
    text = (LIT / "nvidia" / "vector_access_sm80.mlir").read_text()
    text = text.replace("%a: f32", "%a: none").replace("array<i64: 1024>, f32>", "array<i64: 1024>, none>")
    r = rejected(tmp_path, text, expect="error:")
    assert "none" in r.stderr


def test_llvm_refusing_the_program_is_an_error_not_an_abort(tmp_path):
    """cp.async on sm_50: LLVM's instruction selection calls report_fatal_error; the guarded child
    turns that into an error naming the pass and LLVM's reason."""
    text = (LIT / "nvidia" / "cp_async_sm80.mlir").read_text()
    pipeline = ("tessera-lower-tile-to-gpu{arch=sm_80 num_warps=4},canonicalize,cse,convert-nvgpu-to-nvvm,"
                "gpu.module(convert-vector-to-scf,convert-scf-to-cf,convert-nvvm-to-llvm,expand-strided-metadata,"
                "lower-affine),nvvm-attach-target{chip=sm_50 features=+ptx80 O=3},"
                "gpu.module(convert-gpu-to-nvvm,canonicalize,cse,reconcile-unrealized-casts),"
                "gpu-module-to-binary{format=isa}")
    rejected(tmp_path, text, "-p", pipeline,
             expect="LLVM cannot compile this program (in pass 'gpu-module-to-binary{format=isa}'): Cannot select")


def test_narrow_memref_access_is_refused_before_finalize_memref_to_llvm(tmp_path):
    """finalize-memref-to-llvm asserts on loads of memref<?xi1>: the registry checks first."""
    text = (LIT / "passes" / "widen_i1_memrefs.mlir").read_text()
    r = rejected(tmp_path, text, "-p", "cse,finalize-memref-to-llvm",
                 expect="finalize-memref-to-llvm cannot lower 'memref.load' on memref<?xi1>")
    assert "input.mlir:" in r.stderr
    ok = opt(tmp_path, text, "-p", "tessera-widen-i1-memrefs,finalize-memref-to-llvm")
    assert ok.returncode == 0, ok.stderr


class _Crashing:
    """A chunk whose processing dies of a signal, as an MLIR assertion or segfault would."""
    diags, printed = [], 0

    def __init__(self, how):
        self.how = how
        self.diags = []

    def process(self, pipeline):
        import faulthandler
        faulthandler.disable()  # pytest's handler would print a Python stack for the signal
        self.progress("verified")
        self.progress("cse")
        if self.how == "segv":
            os.kill(os.getpid(), signal.SIGSEGV)
        os.write(2, b"python: Foo.cpp:1: void f(): Assertion `x && \"why\"' failed.\n")
        os.abort()

    def add(self, sev, loc, msg):
        self.diags.append((sev, loc, msg))

    def running_label(self, pipeline, done):
        return f"pass '{pipeline.split(',')[len(done) - 1]}'"


@pytest.mark.parametrize("how", ["segv", "abort"])
def test_guarded_child_turns_a_crash_into_a_diagnostic(how):
    from tessera.tools.opt_guard import run_guarded
    chunk = _Crashing(how)
    assert run_guarded(chunk, "cse,canonicalize") is None
    (sev, loc, msg), = chunk.diags
    assert sev == "error" and "in pass 'canonicalize'" in msg and "please report" in msg
    assert ("SIGSEGV" in msg) if how == "segv" else ("SIGABRT" in msg and "Assertion `x" in msg)
