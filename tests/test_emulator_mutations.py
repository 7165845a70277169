"""Mutation tests for the PTX emulator: simulated compiler bugs, injected as string edits of the real
PTX tessera compiles, must each be CAUGHT, either by a sanitizer finding (`ts.SanitizerError`, with
the expected `.kind`) or by the emulated output differing from a NumPy reference beyond tolerance.

One control test per mutated kernel runs the unmutated PTX with checks on and compares it with
NumPy, so a caught mutation is the mutation's doing and not a pre-existing problem. Shapes are small
(one or a few CTAs) to keep the whole file fast. (The prototype's table: ptx-emulation.md §3.4.)
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Callable

import ml_dtypes
import numpy as np
import pytest

import tessera as ts
from tessera.gdn import gating_function_kernel, gating_function_reference
from tessera.kernels import matmul, row_softmax, vector_add

bf16 = ml_dtypes.bfloat16


# -- the kernels under test ------------------------------------------------------------------------
def _r(rng, shape, dt=np.float32):
    return rng.standard_normal(shape).astype(dt)


def _softmax_ref(x):
    e = np.exp(x - x.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _mm_ref(a, b):
    return a.astype(np.float32) @ b.astype(np.float32)


@dataclass(frozen=True)
class Case:
    kernel: object
    target: str
    grid: tuple
    make_args: Callable          # rng -> list of arguments (NumPy arrays and scalars)
    reference: Callable          # args -> expected output
    out: int                     # index of the output argument
    tol: float                   # |out - ref| <= tol * (|ref| + 1)
    constexprs: dict


CASES = {
    # BLOCK=1024, 128 threads: 8 elements a thread; N=300 leaves a ragged tail and keeps every store
    # of the first two 128-element chunks in bounds.
    "vector_add": Case(vector_add, "sm_80", (1,),
                       lambda r: [_r(r, 300), _r(r, 300), np.zeros(300, np.float32)],
                       lambda a: a[0] + a[1], 2, 1e-5, {}),
    # 50 columns: warps 0 and 1 hold data, warps 2 and 3 only -inf; 4 rows, 4 CTAs.
    "row_softmax": Case(row_softmax, "sm_80", (4,),
                        lambda r: [_r(r, (4, 50)), np.zeros((4, 50), np.float32)],
                        lambda a: _softmax_ref(a[0]), 1, 1e-5, {}),
    # BM=BN=64, BK=32: ldmatrix + mma.sync, two K tiles.
    "matmul_sm80": Case(matmul, "sm_80", (1, 1),
                        lambda r: [_r(r, (64, 64), bf16), _r(r, (64, 64), bf16), np.zeros((64, 64), np.float32)],
                        lambda a: _mm_ref(a[0], a[1]), 2, 2e-2, {}),
    # cp.async fills (a partial 50-row tile), ldmatrix + mma.sync, bf16x2 output packing.
    "gating_sm80": Case(gating_function_kernel, "sm_80", (1, 1),
                        lambda r: [_r(r, (1, 50, 32), bf16), (_r(r, (32, 32)) * 0.2).astype(bf16), 2,
                                   np.zeros((1, 50, 32), bf16)],
                        lambda a: gating_function_reference(a[0], a[1], a[2]), 3, 2e-2, {}),
    # TMA + mbarrier + wgmma, 3-stage pipeline: K=256 is four K tiles, so stage 0 is refilled.
    "matmul_sm90a": Case(matmul, "sm_90a", (1, 1),
                         lambda r: [_r(r, (128, 256), bf16), _r(r, (256, 128), bf16),
                                    np.zeros((128, 128), np.float32)],
                         lambda a: _mm_ref(a[0], a[1]), 2, 2e-2, dict(BM=128, BN=128, BK=64)),
}


@functools.lru_cache(maxsize=None)
def _compiled(name):
    c = CASES[name]
    args = c.make_args(np.random.default_rng(0))
    return ts.compile(c.kernel, *args, target=c.target, **c.constexprs)


def _emulate(name, ptx=None, *, checks=True, seed=7):
    """Run `ptx` (default: the compiled PTX) on fresh arguments; (output, reference, report)."""
    c = CASES[name]
    ck = _compiled(name)
    args = c.make_args(np.random.default_rng(seed))
    ref = np.asarray(c.reference(args), np.float32)
    report = ck.emulate(c.grid, *args, checks=checks, ptx=ptx)
    return np.asarray(args[c.out]).astype(np.float32), ref, report


def _excess(name, out, ref):
    """max |out - ref| / (tol * (|ref| + 1)): above 1 means outside the tolerance."""
    with np.errstate(invalid="ignore"):
        r = np.abs(out - ref) / (CASES[name].tol * (np.abs(ref) + 1))
    return float(np.inf) if np.isnan(r).any() else float(r.max())


# -- PTX editing -----------------------------------------------------------------------------------
def _sub(ptx, pattern, repl, *, nth=None, count=None):
    """Replace the `nth` (0-based) match of the regex `pattern` in `ptx`, or every match when `nth` is
    None, by `repl` (a template string or a function of the match). Asserts that the pattern occurs
    (exactly `count` times if given) and that the text changed."""
    matches = list(re.finditer(pattern, ptx, re.M))
    assert matches, f"the PTX has no match for {pattern!r}"
    if count is not None:
        assert len(matches) == count, f"{pattern!r}: expected {count} matches, found {len(matches)}"
    if nth is not None:
        assert len(matches) > nth, f"{pattern!r}: no match #{nth} (only {len(matches)})"
        matches = [matches[nth]]
    out = ptx
    for m in reversed(matches):
        new = repl(m) if callable(repl) else m.expand(repl)
        out = out[:m.start()] + new + out[m.end():]
    assert out != ptx, f"replacing {pattern!r} did not change the PTX"
    return out


def _param_reg(ptx, param):
    """The register an `ld.param.b64 %rdN, [<entry>_param_<param>]` loads into."""
    m = re.search(r"ld\.param\.b64\s+(%rd\d+), \[\w+_param_" + str(param) + r"\];", ptx)
    assert m, f"no ld.param of parameter {param}"
    return m.group(1)


# softmax ------------------------------------------------------------------------------------------
def softmax_drop_partials_barrier(ptx):
    # the bar.sync between the per-warp partial maxima (st.shared, lane 0 of each warp) and the
    # ld.shared.v4 that reads all four of them
    return _sub(ptx, r"^[ \t]*bar\.sync[ \t]+0;\n(?=[ \t]*ld\.shared\.v4)", "", nth=0)


def softmax_wrong_shfl_offset(ptx):
    # first butterfly step of the SUM reduction (the second 5-step shfl chain): xor 16 -> xor 8, so
    # each lane sums its own 16-lane half twice and the other half not at all. (The MAX reduction is
    # no good target: softmax is invariant to the shift, a wrong maximum only costs accuracy.)
    return _sub(ptx, r"(shfl\.sync\.bfly\.b32\s+%r\d+, %r\d+, )16(, 31, -1;)", r"\g<1>8\2", nth=1, count=2)


def _param_regs(ptx, param):
    """(64-bit register, 32-bit register or None) holding a parameter: a kernel specialised on 32-bit
    indices (tessera-narrow-index) computes with the low half, converted once."""
    wide = _param_reg(ptx, param)
    m = re.search(r"cvt\.u32\.u64\s+(%r\d+), " + re.escape(wide) + ";", ptx)
    return wide, m.group(1) if m else None


def softmax_wrong_row_stride(ptx):
    # the output row base uses y's column stride (param 13) where its row stride (param 12) belongs
    (row64, row32), (col64, col32) = _param_regs(ptx, 12), _param_regs(ptx, 13)
    row, col = (row32, col32) if row32 and col32 else (row64, col64)
    return _sub(ptx, r"(mad\.lo\.s(?:32|64)\s+%\w+, (?:%\w+, )?)" + re.escape(row) + r"(, )", r"\g<1>" + col + r"\2",
                nth=0, count=1)


# vector_add ---------------------------------------------------------------------------------------
def vadd_run_test_always_passes(ptx):
    # N = 300 holds whole 16-byte chunks, so each 4-element run has one bounds test; the tests always
    # pass now: runs past the end are loaded and stored
    # (a predicated access tests `column < N` and runs when it holds; a branch tests `column >= N` and skips)
    if re.search(r"setp\.lt\.u(32|64)\s+%p\d+, %r\w*\d+, %r\w*\d+;\n(?:[^\n]*\n){0,12}?\s*@%p\d+ ld\.global", ptx):
        return _sub(ptx, r"setp\.lt\.u(32|64)(\s+%p\d+, )(%r\w*\d+), %r\w*\d+;", r"setp.eq.u\1\2\3, \3;")
    return _sub(ptx, r"setp\.ge\.u(32|64)(\s+%p\d+, )(%r\w*\d+), %r\w*\d+;", r"setp.ne.u\1\2\3, \3;")


def vadd_store_wrong_offset(ptx):
    # every 16-byte vector store lands 128 elements (512 bytes) further
    return _sub(ptx, r"(st\.global\.v4\.b32\s+\[%rd\d+)\]", r"\1+512]")


# sm_80 matmul -------------------------------------------------------------------------------------
def mm80_ldmatrix_no_trans(ptx):
    # B's k16n16 operand tiles read without the transpose
    return _sub(ptx, r"ldmatrix\.sync\.aligned\.m8n8\.x4\.trans\.shared\.b16", "ldmatrix.sync.aligned.m8n8.x4.shared.b16")


def mm80_drop_barrier_after_wait(ptx):
    # the K loop's bar.sync after `cp.async.wait_group 1`: a thread's ldmatrix reads slot bytes other
    # threads' cp.async copied (and a refill may overwrite a slot another warp still reads)
    return _sub(ptx, r"(cp\.async\.wait_group\s+1;\n)[ \t]*bar\.sync[ \t]+0;\n", r"\1", count=1)


def mm80_mma_swap_a_regs(ptx):
    # the first mma.sync gets its a0 and a1 registers (rows g and g+8) swapped
    return _sub(ptx, r"(mma\.sync\.aligned[^\n]*\n\s*\{[^}]*\},\s*\{)(%r\d+), (%r\d+)", r"\1\3, \2", nth=0)


# sm_80 gating -------------------------------------------------------------------------------------
def gate_wait_group_1(ptx):
    # one commit group in flight: `wait_group 1` waits for nothing
    return _sub(ptx, r"cp\.async\.wait_group(\s+)0;", r"cp.async.wait_group\g<1>1;", count=1)


def gate_drop_commit_group(ptx):
    # uncommitted copies are not waited for by `wait_group 0`
    return _sub(ptx, r"^[ \t]*cp\.async\.commit_group;\n", "", count=1)


def gate_drop_barrier_after_wait(ptx):
    # every bar.sync between the cp.async wait and the first read of the tile (ldmatrix of the mma, which
    # reads the buffer in place): each thread then reads tile bytes other threads copied
    wait = re.search(r"cp\.async\.wait_group\s+0;\n", ptx)
    assert wait, "no cp.async.wait_group 0"
    first_read = min(i for i in (ptx.find("ld.shared", wait.end()), ptx.find("ldmatrix", wait.end())) if i >= 0)
    between = ptx[wait.end():first_read]
    assert "bar.sync" in between
    return ptx[:wait.end()] + re.sub(r"[ \t]*bar\.sync[ \t]+0;\n", "", between) + ptx[first_read:]


def gate_cvt_bf16x2_swap(ptx):
    # `cvt.rn.bf16x2.f32 d, hi, lo`: swapping the operands swaps every packed pair of outputs
    return _sub(ptx, r"(cvt\.rn\.bf16x2\.f32\s+%r\d+, )(%r\d+), (%r\d+);", r"\1\3, \2;")


# sm_90a matmul ------------------------------------------------------------------------------------
def _mov_of_operand(ptx, pattern):
    """For the first instruction matching `pattern` (its group 1 a register), the `mov.b32 reg, imm`
    defining that register: (match of the mov, imm)."""
    m = re.search(pattern, ptx)
    assert m, f"no match for {pattern!r}"
    mv = re.search(r"mov\.b32\s+" + re.escape(m.group(1)) + r", (\d+);", ptx)
    assert mv, f"no mov.b32 defines {m.group(1)}"
    return mv, int(mv.group(1))


def mm90_expect_tx_plus_16(ptx):
    mv, v = _mov_of_operand(ptx, r"mbarrier\.arrive\.expect_tx\.shared\.b64\s+%rd\d+, \[[^\]]+\], (%r\d+);")
    assert v == 32768, v          # 128x64 A box + two 64x64 B boxes, bf16
    return ptx[:mv.start(1)] + str(v + 16) + ptx[mv.end(1):]


def mm90_mbarrier_init_count_2(ptx):
    # mbarriers expect 2 arrivals; only thread 0 ever arrives (arrive.expect_tx)
    mv, v = _mov_of_operand(ptx, r"mbarrier\.init\.shared\.b64\s+\[[^\]]+\], (%r\d+);")
    assert v == 1, v
    return ptx[:mv.start(1)] + "2" + ptx[mv.end(1):]


def mm90_wgmma_b_lbo(ptx):
    # the B descriptor of the first wgmma: leading byte offset 8192 -> 16384, so the second
    # 64-column half of B is read 16 KiB past the first: from the next stage's A tile
    m = re.search(r"wgmma\.mma_async[^\n]*\}, (%rd\d+), (%rd\d+), ", ptx)
    assert m
    d = re.search(r"or\.b64\s+" + re.escape(m.group(2)) + r", %rd\d+, (\d+);", ptx)
    assert d, f"no or.b64 defines the B descriptor {m.group(2)}"
    old = int(d.group(1))
    assert ((old >> 16) & 0x3FFF) << 4 == 8192, hex(old)
    return ptx[:d.start(1)] + str(old + ((8192 >> 4) << 16)) + ptx[d.end(1):]


def mm90_ignore_try_wait(ptx):
    # the spin loop falls through whether or not the phase completed
    return _sub(ptx, r"@P1 bra\.uni DONE;", "bra.uni DONE;", nth=0)


def mm90_try_wait_wrong_parity(ptx):
    # wait on the opposite phase parity. On a GPU, a wait issued before the TMA lands returns at
    # once (the previous phase counts as complete: an early read), one issued after it waits for a
    # phase that never comes (a hang). The parity register is set just before the wait's inline asm
    # block; xor it with 1 there.
    m = re.search(r"// begin inline asm\n(?:[^\n]*\n){0,4}?\s*mbarrier\.try_wait\.parity\.shared\.b64\s+P1, "
                  r"\[%r\d+\], (%r\d+), ", ptx)
    assert m, "no mbarrier.try_wait.parity"
    reg = m.group(1)
    return ptx[:m.start()] + f"xor.b32 \t{reg}, {reg}, 1;\n\t" + ptx[m.start():]


def mm90_wgmma_wait_group_1(ptx):
    # the K loop's last `wgmma.wait_group 2` -> `3` (128x128 on one warpgroup: two 64-row accumulators,
    # two groups per K step): a group of the previous K step may still read its shared stage when this
    # iteration's TMA refills that stage
    return _sub(ptx, r"(wgmma\.wait_group\.sync\.aligned\s+)2;", r"\g<1>3;", count=1)


def mm90_tma_coords_swapped(ptx):
    # the TMA of B's second 64-column box (first coordinate `or.b32 r, n0, 64`) gets its (column,
    # row) coordinates swapped: it loads B[64:128, 0:64] instead of B[0:64, 64:128]
    halves = set(re.findall(r"or\.b32\s+(%r\d+), %r\d+, 64;", ptx))
    assert halves, "no `or.b32 r, x, 64` column offset"
    return _sub(ptx, r"(cp\.async\.bulk\.tensor\.2d[^\n]*\[%rd\d+, \{)(" + "|".join(map(re.escape, halves))
                + r"), (%r\d+)\}", r"\1\3, \2}", nth=0)


# -- the mutations ---------------------------------------------------------------------------------
# (id, case, edit, expected, at): `expected` is a finding kind (the SanitizerError's `.kind`, the
# first finding's), NUMERIC (no finding; the output is outside the tolerance), or a tuple of those
# (either catches it); `at` is a regex the first finding's PTX instruction must match.
NUMERIC = "numeric"
MUTATIONS = [
    ("softmax-drop-bar.sync-partials", "row_softmax", softmax_drop_partials_barrier, "shared-race", r"ld\.shared\.v4"),
    ("softmax-shfl-offset-16to8-sum", "row_softmax", softmax_wrong_shfl_offset, NUMERIC, None),
    # rows written with the wrong stride overlap: two CTAs store the same bytes
    ("softmax-store-row-stride", "row_softmax", softmax_wrong_row_stride, ("global-race", NUMERIC), r"st\.global"),
    ("vadd-run-test-always-passes", "vector_add", vadd_run_test_always_passes, "global-out-of-bounds",
     r"ld\.global"),
    ("vadd-store-offset+128", "vector_add", vadd_store_wrong_offset, ("global-out-of-bounds", NUMERIC),
     r"st\.global"),
    ("mm80-ldmatrix-drop-trans", "matmul_sm80", mm80_ldmatrix_no_trans, NUMERIC, None),
    ("mm80-drop-bar.sync-after-cp.async.wait", "matmul_sm80", mm80_drop_barrier_after_wait,
     ("async-copy-incomplete", "shared-race"), r"ldmatrix|cp\.async"),
    ("mm80-mma.sync-swap-a0-a1", "matmul_sm80", mm80_mma_swap_a_regs, NUMERIC, None),
    ("gate80-cp.async.wait_group-0to1", "gating_sm80", gate_wait_group_1, "async-copy-incomplete",
     r"ld\.shared|ldmatrix"),
    ("gate80-drop-cp.async.commit_group", "gating_sm80", gate_drop_commit_group, "async-copy-incomplete",
     r"ld\.shared|ldmatrix"),
    ("gate80-drop-bar.sync-after-wait", "gating_sm80", gate_drop_barrier_after_wait, "shared-race",
     r"ld\.shared|ldmatrix"),
    ("gate80-cvt.bf16x2-operand-swap", "gating_sm80", gate_cvt_bf16x2_swap, NUMERIC, None),
    ("mm90-expect_tx+16", "matmul_sm90a", mm90_expect_tx_plus_16, "mbarrier-deadlock", r"mbarrier\.try_wait"),
    ("mm90-mbarrier.init-count-1to2", "matmul_sm90a", mm90_mbarrier_init_count_2, "mbarrier-deadlock",
     r"mbarrier\.try_wait"),
    # reads stage 1's A tile (not yet waited for) and, at the last stage, past the end of shared memory
    ("mm90-wgmma-B-desc-LBO", "matmul_sm90a", mm90_wgmma_b_lbo, ("async-copy-incomplete", "shared-out-of-bounds"),
     r"wgmma\.mma_async"),
    # adversarial mode (on with checks): the first probe of a completed phase fails
    ("mm90-ignore-try_wait-result", "matmul_sm90a", mm90_ignore_try_wait, "async-copy-incomplete",
     r"wgmma\.mma_async"),
    # the emulator's TMA lands at issue, so the wait is for the phase after it, which never comes
    ("mm90-try_wait-wrong-parity", "matmul_sm90a", mm90_try_wait_wrong_parity, "mbarrier-deadlock",
     r"mbarrier\.try_wait"),
    ("mm90-tma-coords-swapped", "matmul_sm90a", mm90_tma_coords_swapped, NUMERIC, None),
    # a TMA refills a stage that a committed wgmma group still reads (WAR through shared.busy)
    ("mm90-wgmma.wait_group-2to3", "matmul_sm90a", mm90_wgmma_wait_group_1, "shared-race",
     r"cp\.async\.bulk\.tensor"),
]


@pytest.mark.parametrize("name", sorted(CASES))
def test_control_unmutated_ptx_is_clean_and_correct(name):
    out, ref, report = _emulate(name)           # checks on: a finding raises SanitizerError
    assert report.ok and report.steps > 0
    assert _excess(name, out, ref) <= 1.0, f"{name}: max error {np.nanmax(np.abs(out - ref))}"


def test_mutation_ids_are_distinct():
    ids = [m.id if hasattr(m, "id") else m[0] for m in MUTATIONS]
    assert len(set(ids)) == len(ids) >= 12


@pytest.mark.parametrize("mid, name, mutate, expected, at",
                         [m if hasattr(m, "id") else pytest.param(*m, id=m[0]) for m in MUTATIONS])
def test_mutation_is_caught(mid, name, mutate, expected, at):
    ptx = _compiled(name).asm["ptx"]
    mutated = mutate(ptx)
    assert mutated != ptx
    allowed = expected if isinstance(expected, tuple) else (expected,)
    try:
        out, ref, _ = _emulate(name, mutated)
    except ts.SanitizerError as e:
        assert e.kind in allowed, f"{mid}: caught as {e.kind}, expected {allowed}:\n{e}"
        first = e.findings[0]
        assert first.line > 0 and re.match(at, first.instruction), f"{mid}: first finding at the wrong place: {first}"
        return
    assert NUMERIC in allowed, f"{mid}: not caught: no sanitizer finding (expected {allowed})"
    excess = _excess(name, out, ref)
    assert excess > 1.0, f"{mid}: not caught: output within tolerance of NumPy ({excess:.3g} of it)"
