"""The PTX emulator against the PTX ISA: unimplemented PTX, the sanitizer checks (races, bounds,
divergent barriers, the step limit) and the performance counters on known access patterns."""
from __future__ import annotations

import signal

import numpy as np
import pytest

from tessera.errors import EmulatorError, SanitizerError

from emu_ptx import LDM_SHARED, launch, line_of, module

# -- 9. unimplemented PTX ----------------------------------------------------------------------

def test_unimplemented_opcode_names_opcode_and_line():
    ptx = module("  mov.u32 %r1, 255;\n  popc.b32 %r10, %r1;\n  mad.lo.s64 %rd41, %rd40, 4, %rd50;\n"
                 "  st.global.u32 [%rd41], %r10;", ["out"])
    with pytest.raises(EmulatorError) as ei:
        launch(ptx, [("out", np.zeros(32, np.uint32))])
    msg = str(ei.value)
    assert "popc" in msg and f"PTX line {line_of(ptx, 'popc.b32')}" in msg


def test_branch_to_undefined_label():
    ptx = module("  setp.eq.u32 %p1, %r0, 0;\n  @%p1 bra NOWHERE;", ["out"])
    with pytest.raises(EmulatorError) as ei:
        launch(ptx, [("out", np.zeros(32, np.uint32))])
    assert "undefined label" in str(ei.value) and f"line {line_of(ptx, 'NOWHERE')}" in str(ei.value)


def test_unimplemented_form_names_form_and_line():
    ptx = module("  mma.sync.aligned.m16n8k8.row.col.f32.bf16.bf16.f32 {%f10, %f11, %f12, %f13}, {%r1, %r2},\n"
                 "      {%r3}, {%f1, %f2, %f3, %f4};", ["out"])
    with pytest.raises(EmulatorError) as ei:
        launch(ptx, [("out", np.zeros(32, np.uint32))])
    msg = str(ei.value)
    assert "mma.sync.aligned.m16n8k8" in msg and f"PTX line {line_of(ptx, 'mma.sync')}" in msg


# -- 10. checks --------------------------------------------------------------------------------

RACE = """
  setp.eq.u32 %p1, %r0, 0;
  setp.eq.u32 %p2, %r0, 1;
  @%p1 st.shared.u32 [smem], 42;
  SYNC
  @%p2 ld.shared.u32 %r10, [smem];
  @%p2 st.global.u32 [%rd50], %r10;"""


def test_shared_raw_race_without_barrier():
    ptx = module(RACE.replace("SYNC", ""), ["out"], shared=LDM_SHARED)
    with pytest.raises(SanitizerError) as ei:
        launch(ptx, [("out", np.zeros(1, np.uint32))])
    assert ei.value.kind == "shared-race"
    f = ei.value.findings[0]
    assert f.line == line_of(ptx, "ld.shared") and f.thread == 1 and "RAW" in f.detail


def test_shared_raw_with_barrier_passes():
    out = np.zeros(1, np.uint32)
    launch(module(RACE.replace("SYNC", "bar.sync 0;"), ["out"], shared=LDM_SHARED), [("out", out)])
    assert out[0] == 42


def test_global_out_of_bounds_store_line():
    ptx = module("  mad.lo.s64 %rd41, %rd40, 4, %rd50;\n  st.global.u32 [%rd41], %r0;", ["out"])
    out = np.zeros(16, np.uint32)
    with pytest.raises(SanitizerError) as ei:
        launch(ptx, [("out", out)])
    assert ei.value.kind == "global-out-of-bounds"
    f = ei.value.findings[0]
    assert f.line == line_of(ptx, "st.global.u32") and f.thread == 16 and f.cta == (0, 0, 0)
    assert "16 threads" in f.detail
    assert out.tolist() == list(range(16))                    # the in-bounds lanes still stored


def test_divergent_barrier():
    ptx = module("""
  setp.lt.u32 %p1, %r0, 16;
  @%p1 bra LOW;
  bar.sync 0;
  bra END;
LOW:
  bar.sync 0;
END:""", ["out"])
    with pytest.raises(SanitizerError) as ei:
        launch(ptx, [("out", np.zeros(1, np.uint32))])
    assert ei.value.kind == "divergent-barrier"


HALF_EXIT = """
  setp.ge.u32 %p1, %r0, 32;
  EXIT
  bar.sync 0;
  mad.lo.s64 %rd41, %rd40, 4, %rd50;
  st.global.u32 [%rd41], 1;
END:"""


def test_barrier_after_half_the_cta_exits_passes():
    out = np.zeros(64, np.uint32)                 # sm_70+: exited threads do not count at bar.sync
    launch(module(HALF_EXIT.replace("EXIT", "@%p1 ret;"), ["out"]), [("out", out)], num_warps=2)
    assert out.tolist() == [1] * 32 + [0] * 32


def test_barrier_after_half_the_cta_branches_to_a_later_exit_passes():
    out = np.zeros(64, np.uint32)                 # `if (tid >= 32) return;` with the return block placed last
    launch(module(HALF_EXIT.replace("EXIT", "@%p1 bra END;"), ["out"]), [("out", out)], num_warps=2)
    assert out.tolist() == [1] * 32 + [0] * 32


def test_step_limit():
    ptx = module("LOOP:\n  add.u32 %r1, %r1, 1;\n  bra LOOP;", ["out"])
    with pytest.raises(SanitizerError) as ei:
        launch(ptx, [("out", np.zeros(1, np.uint32))], max_steps=1000)
    assert ei.value.kind == "step-limit"


def _with_alarm(seconds, fn):
    def handler(signum, frame):
        raise TimeoutError(f"no result after {seconds} s")
    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_step_limit_on_branch_only_loop():
    ptx = module("LOOP:\n  bra LOOP;", ["out"])
    with pytest.raises(SanitizerError) as ei:
        _with_alarm(1.0, lambda: launch(ptx, [("out", np.zeros(1, np.uint32))], max_steps=1000))
    assert ei.value.kind == "step-limit"


def test_partial_warp_at_a_full_mask_shuffle():
    """Half of the warp exited; the rest run shfl.sync with member mask -1: a partial warp at a
    collective (reported as divergent-barrier, with the thread)."""
    ptx = module("""
  setp.ge.u32 %p1, %r0, 16;
  @%p1 ret;
  shfl.sync.bfly.b32 %r10, %r0, 1, 31, -1;
  mad.lo.s64 %rd41, %rd40, 4, %rd50;
  st.global.u32 [%rd41], %r10;""", ["out"])
    with pytest.raises(SanitizerError) as ei:
        launch(ptx, [("out", np.zeros(32, np.uint32))])
    assert ei.value.kind == "divergent-barrier" and "part of a warp" in ei.value.findings[0].detail
    assert ei.value.findings[0].line == line_of(ptx, "shfl.sync")


# -- performance counters ----------------------------------------------------------------------

@pytest.mark.parametrize("stride_words, extra", [(1, 0), (2, 1), (32, 31), (0, 0), (33, 0)])
def test_shared_bank_conflicts_of_strided_words(stride_words, extra):
    """32 threads store one 4-byte word each at word stride s: the conflict degree is the most
    distinct words any bank serves (s=2: 2-way, s=32: 32-way; s=0 is a broadcast; s=33 hits every bank)."""
    ptx = module(f"""
  mul.lo.u32 %r20, %r0, {4 * stride_words};
  st.shared.u32 [%r20], %r0;
  bar.sync 0;
  ld.shared.u32 %r10, [%r20];
  mad.lo.s64 %rd41, %rd40, 4, %rd50;
  st.global.u32 [%rd41], %r10;""", ["out"], shared=".shared .align 16 .b8 buf[8192];\n")
    ptx = ptx.replace("[%r20]", "[buf+0]") if stride_words == 0 else ptx.replace("[%r20]", "[%rd21]").replace(
        "  st.shared", "  cvt.u64.u32 %rd20, %r20;\n  mov.u64 %rd22, buf;\n  add.s64 %rd21, %rd22, %rd20;\n  st.shared", 1)
    out = np.zeros(32, np.uint32)
    rep = launch(ptx, [("out", out)], checks=stride_words != 0)   # s=0: every thread stores the same word (a WAW)
    assert rep.shared_requests == 2
    assert rep.shared_bank_conflicts == 2 * extra
    assert rep.shared_wavefronts == 2 * (1 + extra)


def test_vector_shared_accesses_are_served_in_quarter_warps():
    """16 bytes per thread (v4): four phases of 8 threads; consecutive 16-byte chunks are conflict-free."""
    ptx = module("""
  mul.lo.u32 %r20, %r0, 16;
  cvt.u64.u32 %rd20, %r20;
  mov.u64 %rd22, buf;
  add.s64 %rd21, %rd22, %rd20;
  st.shared.v4.u32 [%rd21], {%r0, %r0, %r0, %r0};
  mad.lo.s64 %rd41, %rd40, 4, %rd50;
  st.global.u32 [%rd41], %r0;""", ["out"], shared=".shared .align 16 .b8 buf[8192];\n")
    rep = launch(ptx, [("out", np.zeros(32, np.uint32))])
    assert (rep.shared_requests, rep.shared_wavefronts, rep.shared_bank_conflicts) == (1, 4, 0)


def _aligned_256(a):
    raw = np.zeros(a.size + 256 // a.itemsize, a.dtype)
    skip = (-raw.ctypes.data % 256) // a.itemsize
    out = raw[skip:skip + a.size]
    out[:] = a
    return out


@pytest.mark.parametrize("stride, sectors", [(1, 4), (2, 8), (8, 32), (0, 1)])
def test_global_sectors_per_request(stride, sectors):
    """A warp loading 4-byte words at element stride s touches min(32, ceil(128·s / 32)) sectors."""
    ptx = module(f"""
  mul.lo.s64 %rd20, %rd40, {4 * stride};
  add.s64 %rd21, %rd50, %rd20;
  ld.global.u32 %r10, [%rd21];
  mad.lo.s64 %rd41, %rd40, 4, %rd51;
  st.global.u32 [%rd41], %r10;""", ["x", "out"])
    x, out = _aligned_256(np.arange(32 * 8, dtype=np.uint32)), _aligned_256(np.zeros(32, np.uint32))
    rep = launch(ptx, [("x", x), ("out", out)])      # the emulator keeps host alignment mod 256: use cudaMalloc's
    np.testing.assert_array_equal(out, x[::stride][:32] if stride else np.full(32, x[0]))
    assert rep.global_requests == 2 and rep.global_sectors == sectors + 4
