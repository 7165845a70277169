"""The PTX emulator against the PTX ISA: shfl.sync, the ldmatrix and mma.sync fragment tables, cp.async
groups, mbarrier phases, the 128B swizzle (CuTe Swizzle<3,4,3>) and wgmma descriptors."""
from __future__ import annotations

import numpy as np
import pytest

from tessera.errors import SanitizerError
from tessera.runtime.emulator.ops.hopper import _swizzle128
from tessera.runtime.emulator.ops.wgmma import descriptor_fields, operand_offsets

from emu_ptx import LANES, LDM_SHARED, module, launch, lanewise, line_of, f32_bits

# -- 4. shfl.sync ------------------------------------------------------------------------------

def shfl_ref(mode, b, c):
    """PTX ISA shfl.sync pseudocode for every lane; the value of a lane is its lane id."""
    out = []
    for lane in range(32):
        bv = (b[lane] if isinstance(b, list) else b) & 31
        clamp, seg = c & 31, (c >> 8) & 31
        max_lane = (lane & seg) | (clamp & ~seg)
        min_lane = lane & seg
        if mode == "up":
            j = lane - bv
            ok = j >= max_lane
        elif mode == "down":
            j = lane + bv
            ok = j <= max_lane
        elif mode == "bfly":
            j = lane ^ bv
            ok = j <= max_lane
        else:
            j = min_lane | (bv & ~seg)
            ok = j <= max_lane
        out.append(j if ok else lane)
    return out


SHFL = [("bfly", 1, 31), ("bfly", 16, 31), ("bfly", 5, 31), ("down", 3, 31), ("down", 1, 31), ("up", 3, 0),
        ("up", 1, 0), ("idx", 5, 31), ("down", 1, 0x181F), ("up", 2, 0x1800), ("bfly", 4, 0x181F),
        ("idx", 3, 0x181F), ("idx", "reg", 31)]


def test_shfl_sync_modes():
    body = ["  mad.lo.u32 %r40, %r0, 7, 3;", "  and.b32 %r40, %r40, 31;"]   # per-lane index (7 lane + 3) % 32
    for k, (mode, b, c) in enumerate(SHFL):
        bop = "%r40" if b == "reg" else str(b)
        body.append(f"  shfl.sync.{mode}.b32 %r{10 + k}, %r0, {bop}, {c}, 0xffffffff;")
    out = lanewise("\n".join(body), [], np.uint32, len(SHFL))
    for k, (mode, b, c) in enumerate(SHFL):
        bb = [(7 * lane + 3) % 32 for lane in range(32)] if b == "reg" else b
        assert out[k].tolist() == shfl_ref(mode, bb, c), (mode, b, c)
    assert out[0].tolist() == (LANES ^ 1).tolist()
    assert out[3].tolist() == [lane + 3 if lane + 3 <= 31 else lane for lane in range(32)]
    assert out[5].tolist() == [lane - 3 if lane >= 3 else lane for lane in range(32)]
    assert out[7].tolist() == [5] * 32
    assert out[8].tolist() == [lane + 1 if lane % 8 != 7 else lane for lane in range(32)]     # width-8 segments
    assert out[11].tolist() == [lane // 8 * 8 + 3 for lane in range(32)]


def test_shfl_uses_low_five_bits_of_b():
    out = lanewise("  shfl.sync.bfly.b32 %r10, %r0, 33, 31, 0xffffffff;\n"
                   "  shfl.sync.idx.b32 %r11, %r0, 37, 31, 0xffffffff;", [], np.uint32, 2)
    assert out[0].tolist() == shfl_ref("bfly", 33, 31) == (LANES ^ 1).tolist()
    assert out[1].tolist() == shfl_ref("idx", 37, 31) == [5] * 32


# -- 5. ldmatrix -------------------------------------------------------------------------------



@pytest.mark.parametrize("x", [1, 2, 4])
@pytest.mark.parametrize("trans", [False, True])
def test_ldmatrix_fragments(x, trans):
    rng = np.random.default_rng(10 + x)
    data = rng.integers(0, 1 << 16, (32, 8)).astype(np.uint16)      # shared row slot s holds data[s]
    perm = rng.permutation(32).astype(np.uint32)
    perm[8 * x:] = 1000                                               # lanes that give no address: never read
    regs = ", ".join(f"%r{10 + j}" for j in range(x))
    body = f"""
  mad.lo.s64 %rd41, %rd40, 16, %rd50;
  ld.global.v4.u32 {{%r1, %r2, %r3, %r4}}, [%rd41];
  mov.u32 %r20, smem;
  mad.lo.s32 %r21, %r0, 16, %r20;
  st.shared.v4.u32 [%r21], {{%r1, %r2, %r3, %r4}};
  bar.sync 0;
  mad.lo.s64 %rd42, %rd40, 4, %rd51;
  ld.global.u32 %r5, [%rd42];
  mad.lo.s32 %r22, %r5, 16, %r20;
  ldmatrix.sync.aligned.m8n8.x{x}{'.trans' if trans else ''}.shared.b16 {{{regs}}}, [%r22];
  mad.lo.s64 %rd49, %rd40, 4, %rd52;
""" + "\n".join(f"  st.global.u32 [%rd49+{128 * j}], %r{10 + j};" for j in range(x))
    out = np.zeros(32 * x, np.uint32)
    launch(module(body, ["data", "perm", "out"], shared=LDM_SHARED),
           [("data", data.reshape(-1)), ("perm", perm), ("out", out)])
    out = out.reshape(x, 32)
    for j in range(x):
        mat = data[perm[8 * j:8 * j + 8].astype(int)]                # matrix j: row r from lane 8j + r's address
        for lane in range(32):
            r, c = lane // 4, 2 * (lane % 4)
            lo, hi = (mat[c, r], mat[c + 1, r]) if trans else (mat[r, c], mat[r, c + 1])
            assert out[j, lane] == int(lo) | (int(hi) << 16), (j, lane)


# -- 6. mma.sync m16n8k16 bf16 -----------------------------------------------------------------

def test_mma_m16n8k16_bf16_fragments():
    rng = np.random.default_rng(11)
    nw = 2
    g, t = LANES // 4, LANES % 4
    mats, afr, bfr, cfr = [], [], [], []

    def bf(m):
        return (np.asarray(m, np.float32).view(np.uint32) >> 16).astype(np.uint32)

    def pack(lo, hi):
        return lo | (hi << np.uint32(16))

    for _ in range(nw):
        A = rng.integers(-8, 9, (16, 16)) * 0.5            # exact in bf16, and every sum exact in f32
        B = rng.integers(-8, 9, (16, 8)) * 0.25
        C = rng.integers(-64, 65, (16, 8)) * 0.125
        Ab, Bb = bf(A), bf(B)
        afr.append(np.stack([pack(Ab[g, 2 * t], Ab[g, 2 * t + 1]), pack(Ab[g + 8, 2 * t], Ab[g + 8, 2 * t + 1]),
                             pack(Ab[g, 2 * t + 8], Ab[g, 2 * t + 9]),
                             pack(Ab[g + 8, 2 * t + 8], Ab[g + 8, 2 * t + 9])], 1))
        bfr.append(np.stack([pack(Bb[2 * t, g], Bb[2 * t + 1, g]), pack(Bb[2 * t + 8, g], Bb[2 * t + 9, g])], 1))
        cfr.append(np.stack([C[g, 2 * t], C[g, 2 * t + 1], C[g + 8, 2 * t], C[g + 8, 2 * t + 1]], 1))
        mats.append((A, B, C))
    afrag = np.concatenate(afr).astype(np.uint32).reshape(-1)
    bfrag = np.concatenate(bfr).astype(np.uint32).reshape(-1)
    cfrag = np.concatenate(cfr).astype(np.float32).reshape(-1)
    out = np.zeros(64 * 4, np.float32)
    body = """
  mad.lo.s64 %rd41, %rd40, 16, %rd50;
  ld.global.v4.u32 {%r1, %r2, %r3, %r4}, [%rd41];
  mad.lo.s64 %rd42, %rd40, 8, %rd51;
  ld.global.v2.u32 {%r5, %r6}, [%rd42];
  mad.lo.s64 %rd43, %rd40, 16, %rd52;
  ld.global.v4.f32 {%f1, %f2, %f3, %f4}, [%rd43];
  mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%f10, %f11, %f12, %f13},
      {%r1, %r2, %r3, %r4}, {%r5, %r6}, {%f1, %f2, %f3, %f4};
  mad.lo.s64 %rd44, %rd40, 16, %rd53;
  st.global.v4.f32 [%rd44], {%f10, %f11, %f12, %f13};"""
    launch(module(body, ["a", "b", "c", "d"]), [("a", afrag), ("b", bfrag), ("c", cfrag), ("d", out)], num_warps=nw)
    d = out.reshape(nw, 32, 4)
    for w, (A, B, C) in enumerate(mats):
        want = (A @ B + C).astype(np.float32)
        got = np.zeros((16, 8), np.float32)
        got[g, 2 * t], got[g, 2 * t + 1] = d[w, :, 0], d[w, :, 1]
        got[g + 8, 2 * t], got[g + 8, 2 * t + 1] = d[w, :, 2], d[w, :, 3]
        assert np.array_equal(f32_bits(got), f32_bits(want)), w


# -- 7. cp.async -------------------------------------------------------------------------------

def test_cp_async_zero_fill():
    rng = np.random.default_rng(12)
    src = rng.integers(1, 256, 16 * 31 + 4).astype(np.uint8)      # thread 31's row is only 4 bytes long
    size = np.array([t % 17 for t in range(32)], np.uint32)
    size[31] = 4
    out = np.zeros(32 * 4, np.uint32)
    body = """
  mad.lo.s64 %rd41, %rd40, 16, %rd50;
  mad.lo.s64 %rd42, %rd40, 4, %rd51;
  ld.global.u32 %r5, [%rd42];
  mov.u32 %r20, smem;
  mad.lo.s32 %r21, %r0, 16, %r20;
  cp.async.cg.shared.global [%r21], [%rd41], 16, %r5;
  cp.async.commit_group;
  cp.async.wait_group 0;
  ld.shared.v4.u32 {%r10, %r11, %r12, %r13}, [%r21];
  mad.lo.s64 %rd43, %rd40, 16, %rd52;
  st.global.v4.u32 [%rd43], {%r10, %r11, %r12, %r13};"""
    launch(module(body, ["src", "size", "out"], shared=LDM_SHARED), [("src", src), ("size", size), ("out", out)])
    got = out.view(np.uint8).reshape(32, 16)
    for t in range(32):
        n = int(size[t])
        want = np.zeros(16, np.uint8)
        want[:n] = src[16 * t:16 * t + n]
        assert got[t].tolist() == want.tolist(), t


CP_GROUPS = """
  mov.u32 %r30, 0xDEADBEEF;
  mov.u32 %r20, smem;
  mad.lo.s32 %r21, %r0, 16, %r20;
  add.s32 %r22, %r21, 512;
  st.shared.v4.u32 [%r22], {%r30, %r30, %r30, %r30};
  mad.lo.s64 %rd41, %rd40, 16, %rd50;
  mad.lo.s64 %rd42, %rd40, 16, %rd51;
  cp.async.cg.shared.global [%r21], [%rd41], 16;
  cp.async.commit_group;
  cp.async.cg.shared.global [%r22], [%rd42], 16;
  cp.async.commit_group;
  EARLY
  cp.async.wait_group 1;
  ld.shared.v4.u32 {%r10, %r11, %r12, %r13}, [%r21];
  LATE
  cp.async.wait_group 0;
  ld.shared.v4.u32 {%r18, %r19, %r24, %r25}, [%r22];
  mad.lo.s64 %rd43, %rd40, 16, %rd52;
  st.global.v4.u32 [%rd43], {%r10, %r11, %r12, %r13};
  st.global.v4.u32 [%rd43+512], {%r14, %r15, %r16, %r17};
  st.global.v4.u32 [%rd43+1024], {%r18, %r19, %r24, %r25};"""
EARLY_A = "ld.shared.u32 %r26, [%r21]; // early A"
EARLY_B = "ld.shared.v4.u32 {%r14, %r15, %r16, %r17}, [%r22]; // early B"


def _cp_groups_ptx(early, late):
    return module(CP_GROUPS.replace("EARLY", early).replace("LATE", late), ["a", "b", "out"],
                  shared=".shared .align 16 .b8 smem[1024];\n\n")


def _cp_groups(early="", late="", checks=True):
    rng = np.random.default_rng(13)
    a = rng.integers(0, 1 << 32, 128, dtype=np.uint64).astype(np.uint32)
    b = rng.integers(0, 1 << 32, 128, dtype=np.uint64).astype(np.uint32)
    out = np.zeros(3 * 128, np.uint32)
    launch(_cp_groups_ptx(early, late), [("a", a), ("b", b), ("out", out)], checks=checks)
    return a, b, out.reshape(3, 128)


def test_cp_async_wait_group_retires_older_groups_only():
    a, b, out = _cp_groups(late=EARLY_B, checks=False)
    assert out[0].tolist() == a.tolist()                     # group 0: delivered by wait_group 1
    assert out[1].tolist() == [0xDEADBEEF] * 128             # group 1: still in flight, the old bytes
    assert out[2].tolist() == b.tolist()                     # delivered by wait_group 0
    a, b, out = _cp_groups(checks=True)                   # without the early read: clean under checks
    assert out[0].tolist() == a.tolist() and out[2].tolist() == b.tolist()


@pytest.mark.parametrize("where", ["before-any-wait-A", "before-any-wait-B", "after-wait_group-1-B"])
def test_cp_async_read_before_wait_is_reported(where):
    early = {"before-any-wait-A": EARLY_A, "before-any-wait-B": EARLY_B}.get(where, "")
    late = EARLY_B if where == "after-wait_group-1-B" else ""
    with pytest.raises(SanitizerError) as ei:
        _cp_groups(early, late)
    assert ei.value.kind == "async-copy-incomplete"
    assert {f.kind for f in ei.value.findings} == {"async-copy-incomplete"}
    assert ei.value.findings[0].line == line_of(_cp_groups_ptx(early, late), "// early")


# -- 8. mbarrier, the 128B swizzle, wgmma descriptors ------------------------------------------

BAR = ".shared .align 8 .b64 bar[1];\n\n"


def test_mbarrier_phase_and_parity():
    probes = []
    lines = ["  setp.ne.u32 %p1, %r0, 0;", "  @%p1 bra DONE;", "  mbarrier.init.shared::cta.b64 [bar], 3;"]

    def probe(parity):
        k = len(probes)
        probes.append(parity)
        lines.append(f"  mbarrier.try_wait.parity.shared::cta.b64 %p2, [bar], {parity};")
        lines.append(f"  selp.u32 %r20, 1, 0, %p2;\n  st.global.u32 [%rd50+{4 * k}], %r20;")

    arrive = "  mbarrier.arrive.shared::cta.b64 %rd20, [bar];"
    probe(0)
    probe(1)
    lines.append(arrive)
    probe(0)
    lines.append(arrive)
    probe(0)
    lines.append("  mbarrier.arrive.expect_tx.shared::cta.b64 %rd20, [bar], 0;")      # the 3rd arrival
    probe(0)
    probe(1)
    lines += [arrive, arrive]
    probe(1)
    lines.append(arrive)                                     # 3 more: the second phase completes
    probe(1)
    probe(0)
    lines.append("DONE:")
    out = np.zeros(len(probes), np.uint32)
    launch(module("\n".join(lines), ["out"], shared=BAR), [("out", out)], checks=False)
    # try_wait.parity P tests the completion of the current or the immediately preceding phase, whichever has
    # parity P: on a fresh barrier (phase 0 in progress) parity 1 names the preceding phase, complete (the
    # producer-start idiom). Phase 0 completes at the 3rd arrival, phase 1 at the 6th; after two completions
    # phase 2 (parity 0) is in progress, so parity 0 fails and parity 1 (phase 1) succeeds.
    assert out.tolist() == [0, 1, 0, 0, 1, 0, 0, 1, 0]


SPIN_KERNEL = """
  setp.eq.u32 %p1, %r0, 0;
  @%p1 mbarrier.init.shared::cta.b64 [bar], COUNT;
  bar.sync 0;
  setp.lt.u32 %p3, %r0, ARRIVERS;
  @%p3 ARRIVE
WAIT0:
  mbarrier.try_wait.parity.shared::cta.b64 %p2, [bar], 0;
  @!%p2 bra WAIT0;
  @%p3 mbarrier.arrive.shared::cta.b64 %rd20, [bar];
WAIT1:
  mbarrier.try_wait.parity.shared::cta.b64 %p2, [bar], 1;
  @!%p2 bra WAIT1;
  mad.lo.s64 %rd41, %rd40, 4, %rd50;
  st.global.u32 [%rd41], 1;"""


def _spin(count, arrivers, arrive="mbarrier.arrive.shared::cta.b64 %rd20, [bar];"):
    out = np.zeros(32, np.uint32)
    body = SPIN_KERNEL.replace("COUNT", str(count)).replace("ARRIVERS", str(arrivers)).replace("ARRIVE", arrive)
    launch(module(body, ["out"], shared=BAR), [("out", out)])
    return out


def test_mbarrier_all_threads_arrive_and_spin():
    assert _spin(32, 32).tolist() == [1] * 32                 # checks on: the first probe of a phase fails, spins retry
    assert _spin(4, 4).tolist() == [1] * 32


def test_mbarrier_missing_arrival_deadlocks():
    with pytest.raises(SanitizerError) as ei:
        _spin(32, 31)
    assert ei.value.kind == "mbarrier-deadlock"


def test_mbarrier_expect_tx_bytes_hold_the_phase():
    with pytest.raises(SanitizerError) as ei:                # arrivals complete, 16 transaction bytes never do
        _spin(4, 4, "mbarrier.arrive.expect_tx.shared::cta.b64 %rd20, [bar], 16;")
    assert ei.value.kind == "mbarrier-deadlock"


def test_swizzle128_is_cute_swizzle_3_4_3():
    lin = np.arange(1 << 14)
    # CuTe Swizzle<B=3, M=4, S=3>: yyy_msk = 0b111 << (M + S), applied as lin ^ ((lin & yyy_msk) >> S)
    want = lin ^ ((lin & (0b111 << 7)) >> 3)
    assert np.array_equal(_swizzle128(lin), want)
    assert np.array_equal(_swizzle128(lin), lin ^ (((lin >> 7) & 7) << 4))
    for base in range(0, 1 << 14, 1024):          # a permutation of every 1024-byte atom; 16-byte chunks stay whole
        blk = _swizzle128(np.arange(base, base + 1024))
        assert sorted(blk.tolist()) == list(range(base, base + 1024))
        assert np.array_equal(blk[::16] % 16, np.zeros(64, int))
    assert np.array_equal(_swizzle128(_swizzle128(lin)), lin)
    assert _swizzle128(128) == 128 + 16 and _swizzle128(7 * 128 + 16 * 7) == 7 * 128


def test_wgmma_descriptor_fields_and_operand_offsets():
    start, lbo, sbo = 0x2400, 0x2000, 1024
    desc = (start >> 4) | ((lbo >> 4) << 16) | ((sbo >> 4) << 32) | (1 << 62)
    assert desc == 0x4000004002000240
    assert descriptor_fields(desc) == {"start": start, "lbo": lbo, "sbo": sbo, "base_offset": 0, "swizzle": 1}
    assert descriptor_fields(desc | (5 << 49) | (2 << 62))["base_offset"] == 5
    assert descriptor_fields((desc & ~(3 << 62)) | (2 << 62))["swizzle"] == 2

    def sw(x):
        return x ^ ((x & (7 << 7)) >> 3)                      # CuTe Swizzle<3,4,3>
    got = operand_offsets(desc, 64, True)                      # K-major: 8-row atoms SBO apart, rows 128 B apart
    assert got.shape == (64, 16)
    for r in range(64):
        for k in range(16):
            assert got[r, k] == sw(start + (r // 8) * sbo + (r % 8) * 128 + 2 * k), (r, k)
    got = operand_offsets(desc, 128, False)                    # MN-major: 64-element MN blocks LBO apart
    assert got.shape == (128, 16)
    for r in range(128):
        for k in range(16):
            assert got[r, k] == sw(start + (r // 64) * lbo + (k // 8) * sbo + (k % 8) * 128 + 2 * r % 128), (r, k)
    assert operand_offsets(desc & ~(3 << 62), 64, True) is None       # no swizzle: not emulated


# -- warp specialisation: divergent producers, named barriers, setmaxnreg ------------------------------
DIVERGENT_ARRIVE = """
  setp.eq.u32 %p1, %r0, 0;
  @%p1 mbarrier.init.shared::cta.b64 [bar], 1;
  bar.sync 0;
  @%p1 bra ARRIVE;
WAIT:
  mbarrier.try_wait.parity.shared::cta.b64 %p2, [bar], 0;
  @!%p2 bra WAIT;
  mad.lo.s64 %rd41, %rd40, 4, %rd50;
  st.global.u32 [%rd41], 1;
  bra.uni DONE;
ARRIVE:
  mbarrier.arrive.shared::cta.b64 %rd20, [bar];
  bra.uni WAIT;
DONE:"""


def test_a_divergent_thread_completes_the_barrier_its_warp_spins_on():
    # lanes 1..31 spin at a lower pc than lane 0's arrive (as a producer thread inside a consumer warp):
    # independent thread scheduling lets lane 0 run, the spinners then see the phase
    out = np.zeros(32, np.uint32)
    launch(module(DIVERGENT_ARRIVE, ["out"], shared=BAR), [("out", out)])
    assert out.tolist() == [1] * 32


NAMED = """
  setp.ge.u32 %p1, %r0, 64;
  @%p1 bra DONE;
  mul.lo.u32 %r20, %r0, 4;
  mov.u32 %r21, smem;
  add.u32 %r22, %r21, %r20;
  st.shared.u32 [%r22], %r0;
  bar.sync 1, COUNT;
  add.u32 %r23, %r0, 32;
  rem.u32 %r23, %r23, 64;
  mul.lo.u32 %r23, %r23, 4;
  add.u32 %r24, %r21, %r23;
  ld.shared.u32 %r10, [%r24];
  mad.lo.s64 %rd41, %rd40, 4, %rd50;
  st.global.u32 [%rd41], %r10;
DONE:"""


def test_named_barrier_over_some_warps():
    # 3 warps; warp 2 (a producer) leaves; warps 0-1 exchange through shared memory over `bar.sync 1, 64`
    out = np.zeros(96, np.uint32)
    launch(module(NAMED.replace("COUNT", "64"), ["out"], shared=LDM_SHARED), [("out", out)], num_warps=3)
    assert out[:64].tolist() == [(t + 32) % 64 for t in range(64)]


def test_named_barrier_waiting_for_more_threads_than_arrive_is_reported():
    # the producer warp left: a count of 96 can never be reached, the 64 waiting threads are reported
    out = np.zeros(96, np.uint32)
    with pytest.raises(SanitizerError) as ei:
        launch(module(NAMED.replace("COUNT", "96"), ["out"], shared=LDM_SHARED), [("out", out)], num_warps=3)
    assert ei.value.kind == "divergent-barrier" and "bar.sync 1, 96" in str(ei.value)


@pytest.mark.parametrize("count,ok", [(40, True), (232, True), (230, False), (264, False)])
def test_setmaxnreg_counts(count, ok):
    body = f"  setmaxnreg.inc.sync.aligned.u32 {count};\n  mad.lo.s64 %rd41, %rd40, 4, %rd50;\n  st.global.u32 [%rd41], 7;"
    out = np.zeros(128, np.uint32)
    if ok:
        launch(module(body, ["out"]), [("out", out)], num_warps=4)
        assert (out == 7).all()
    else:
        with pytest.raises(Exception, match="setmaxnreg"):
            launch(module(body, ["out"]), [("out", out)], num_warps=4)
