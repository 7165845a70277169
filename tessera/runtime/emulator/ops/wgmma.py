"""wgmma (sm_90a): warpgroup MMA with shared-memory matrix descriptors.

`wgmma.mma_async.sync.aligned.m64nNk16.f32.{bf16,f16}.{bf16,f16} {d0..}, descA, descB, scale-d, imm-scale-a,
imm-scale-b, imm-trans-a, imm-trans-b` runs once all 128 threads of the warpgroup have arrived.

Descriptor fields (64 bits): start address >> 4 in bits 0–13, leading byte offset (LBO) >> 4 in
16–29, stride byte offset (SBO) >> 4 in 32–45, swizzle mode in 62–63 (1 = 128B). With the 128B
swizzle, a K-major operand row m (16 bf16 of K) sits in 8-row atoms SBO apart with rows 128 bytes
apart; an MN-major (transposed) operand keeps 64-element MN blocks LBO apart and its K rows in
8-row atoms SBO apart. Physical bytes are the swizzle of the logical offset (see hopper.py).

The D fragment: register 4j+q of thread l of warp w holds row 16w + l/4 + 8(q/2), column
8j + 2(l%4) + q%2. Products are summed exactly and rounded once to f32; scale-d = 0 ignores the
old accumulator.

Checks: operand bytes outside shared memory, never written, not yet delivered by their TMA, or
written by a generic store in this barrier epoch; and a write (st.shared, TMA) to bytes that a
committed-but-not-waited wgmma group still reads (`wgmma.wait_group` too weak): a WAR shared race.
In adversarial mode the accumulator registers read as NaN until a `wgmma.wait_group` retires their
group (chained wgmma instructions still see the real values), so reading them too early shows.
"""
from __future__ import annotations

import re

import numpy as np

from .. import values as V
from .common import unsupported


def descriptor_fields(desc: int) -> dict:
    d = int(desc)
    return {"start": (d & 0x3FFF) << 4, "lbo": ((d >> 16) & 0x3FFF) << 4, "sbo": ((d >> 32) & 0x3FFF) << 4,
            "base_offset": (d >> 49) & 7, "swizzle": (d >> 62) & 3}


def operand_offsets(desc: int, rows: int, k_major: bool):
    """Logical → physical shared offsets of a rows × 16 (bf16) operand: an array (rows, 16)."""
    f = descriptor_fields(desc)
    if f["swizzle"] != 1:
        return None
    r, kk = np.arange(rows)[:, None], np.arange(16)[None, :]
    if k_major:
        lin = f["start"] + (r // 8) * f["sbo"] + (r % 8) * 128 + kk * 2
    else:
        lin = f["start"] + (r // 64) * f["lbo"] + (kk // 8) * f["sbo"] + (kk % 8) * 128 + (r % 64) * 2
    return lin ^ (((lin >> 7) & 7) << 4)


def _wg_state(M):
    """Async wgmma state, per warpgroup (keyed by its first lane): the shared ranges of its open and
    committed groups (per CTA), the accumulator register slots its open group writes and those of each
    committed group, and the true bits of in-flight accumulators (full-lane arrays, merged per lane)."""
    st = M.async_state.get("wgmma")
    if st is None:
        st = {"open": {}, "committed": {}, "acc_true": {}, "acc_open": {}, "acc_groups": {}, "inflight": {}}
        M.async_state["wgmma"] = st
        if M.checks:
            M.shared.busy = np.zeros(M.shared.data.size, np.int16)
    return st


def _groups(M, em):
    """First lanes of the warpgroups with an active lane in `em` (None: all)."""
    lanes = np.arange(0, M.n, 128)
    return [int(g) for g in lanes] if em is None else [int(g) for g in lanes if em[g:g + 128].any()]


def _read_operand(M, ins, cta, desc, rows, k_major, who, elem="bf16"):
    sh = M.shared
    phys = operand_offsets(desc, rows, k_major)
    if phys is None:
        raise unsupported(ins, f"wgmma descriptor {hex(int(desc))} with swizzle mode "
                          f"{descriptor_fields(desc)['swizzle']} (only the 128B swizzle is emulated)")
    lane = cta * M.nthreads
    if phys.min() < 0 or phys.max() + 2 > sh.size:
        M.finding("shared-out-of-bounds", ins, f"wgmma operand {who} (descriptor {hex(int(desc))}, fields "
                  f"{descriptor_fields(desc)}) reads shared offsets up to {int(phys.max()) + 1}, past the "
                  f"{sh.size} bytes of shared memory", lane=lane)
        phys = np.clip(phys, 0, sh.size - 2)
    flat = cta * sh.stride + phys
    ix = np.stack([flat, flat + 1], -1).reshape(-1)
    if M.checks:
        if sh.pending[ix].any():
            M.finding("async-copy-incomplete", ins, f"wgmma operand {who} reads shared bytes whose TMA has not been "
                      "waited for on its mbarrier", lane=lane)
        if not sh.init[ix].all():
            M.finding("uninitialised-shared-read", ins, f"wgmma operand {who} reads shared bytes never written",
                      lane=lane)
        if (sh.writer[ix] >= 0).any():
            M.finding("shared-race", ins, f"RAW: wgmma operand {who} reads shared bytes a thread stored since the "
                      "last barrier", lane=lane)
        if (sh.unfenced[ix] >= 0).any():
            M.finding("shared-race", ins, f"RAW across proxies: wgmma operand {who} reads shared bytes thread "
                      f"{int(sh.unfenced[ix][np.argmax(sh.unfenced[ix] >= 0)])} stored (st.shared) with no "
                      "fence.proxy.async since", lane=lane)
    bits = sh.data[flat].astype(np.uint16) | (sh.data[flat + 1].astype(np.uint16) << np.uint16(8))
    to_f32 = V.bf16_to_f32 if elem == "bf16" else V.f16_bits_to_f32
    return to_f32(bits).astype(np.float64), ix


def _retire_accumulators(M, st, keep, g0):
    """wait_group `keep` in warpgroup g0: the accumulators of all but its `keep` newest committed groups
    get their values (in adversarial mode they read as NaN until then)."""
    groups = st["acc_groups"].setdefault(g0, [])
    while len(groups) > keep:
        done = groups.pop(0)
        pending = set(st["acc_open"].get(g0, set())).union(*groups) if groups else set(st["acc_open"].get(g0, set()))
        for slot in done - pending:
            value = st["acc_true"].get(slot)
            if value is not None:
                M.regs_ref[slot][g0:g0 + 128] = value[g0:g0 + 128]
                st["inflight"][slot][g0:g0 + 128] = False


def compile(ins, M):
    sub = ins.mods[0]
    if sub == "fence":
        return lambda em: None
    if sub == "commit_group":
        def commit(em):
            st = _wg_state(M)
            for g0 in _groups(M, em):
                for key in [k for k in st["open"] if k[1] == g0]:
                    st["committed"].setdefault(key, []).append(st["open"].pop(key))
                st["acc_groups"].setdefault(g0, []).append(st["acc_open"].pop(g0, set()))
        return commit
    if sub == "wait_group":
        keep = ins.operands[0][1]

        def wait(em):
            st = _wg_state(M)
            for g0 in _groups(M, em):
                for key, groups in st["committed"].items():
                    if key[1] != g0:
                        continue
                    while len(groups) > keep:
                        for ix in groups.pop(0):
                            if M.checks:
                                M.shared.busy[ix] -= 1
                _retire_accumulators(M, st, keep, g0)
        return wait
    if sub != "mma_async":
        raise unsupported(ins)
    shape = next(m for m in ins.mods if re.fullmatch(r"m\d+n\d+k\d+", m))
    m_, n_, k_ = (int(v) for v in re.findall(r"\d+", shape))
    types = V.instruction_types(ins.mods)
    if (m_, k_) != (64, 16) or n_ % 8 or types[-3] != "f32" or types[-2] != types[-1] \
            or types[-1] not in ("bf16", "f16"):
        raise unsupported(ins, "only m64nNk16 with f32 accumulators and bf16 or f16 operands")
    elem = types[-1]
    ops = ins.operands
    dregs = ops[0][1]
    if len(dregs) != n_ // 2:
        raise unsupported(ins, f"{len(dregs)} accumulator registers for N={n_}")
    rd_a, rd_b = M.reader(ops[1], "u64", ins), M.reader(ops[2], "u64", ins)
    scale_d = M.reader(ops[3], "pred", ins)
    imms = [o[1] for o in ops[4:8]]
    if len(imms) != 4 or imms[0] != 1 or imms[1] != 1:
        raise unsupported(ins, "negated operands (imm-scale-a/b = -1)")
    trans_a, trans_b = imms[2], imms[3]
    acc_slots = [M.slot(r[1], ins) for r in dregs]
    acc_wr = [M.writer(r, "f32", ins) for r in dregs]
    poison = np.array(0x7FFFFFFF, np.uint32)
    lane = np.arange(128)
    w, l = lane // 32, lane % 32
    rows = [16 * w + l // 4 + 8 * (q // 2) for q in range(4)]

    def run(em):
        n = M.n
        st = _wg_state(M)
        da = np.broadcast_to(np.asarray(rd_a()), (n,))
        db = np.broadcast_to(np.asarray(rd_b()), (n,))
        sd = np.broadcast_to(np.asarray(scale_d()), (n,))
        true = st["acc_true"]         # in-flight accumulators: their real bits (the registers hold NaN)
        flying = st["inflight"]
        cur = [(np.where(flying[sl], true[sl], M.regs_ref[sl]) if sl in true else M.regs_ref[sl])
               .view(np.float32).astype(np.float64) for sl in acc_slots]
        out = [c.copy() for c in cur]
        active = np.ones(n, bool) if em is None else em
        for g0 in range(0, n, 128):
            if not active[g0]:
                continue
            cta = int(M.cta_of[g0])
            A, ia = _read_operand(M, ins, cta, da[g0], 64, not trans_a, "A", elem)
            B, ib = _read_operand(M, ins, cta, db[g0], n_, not trans_b, "B", elem)
            D = A @ B.T                                              # 64 × N
            keep = sd[g0:g0 + 128]
            for j in range(n_ // 8):
                for q in range(4):
                    col = 8 * j + 2 * (l % 4) + (q % 2)
                    old = cur[4 * j + q][g0:g0 + 128]
                    out[4 * j + q][g0:g0 + 128] = D[rows[q], col] + np.where(keep, old, 0.0)
            if M.checks:
                both = np.concatenate([ia, ib])
                M.shared.busy[both] += 1
                st["open"].setdefault((cta, g0), []).append(both)
        for sl, wr, v in zip(acc_slots, acc_wr, out):
            wr(v.astype(np.float32), em)
            if M.adversarial:       # until a wgmma.wait_group retires this group, the registers read as NaN
                kept = true.get(sl)
                true[sl] = M.regs_ref[sl].copy() if kept is None else np.where(active, M.regs_ref[sl], kept)
                flying.setdefault(sl, np.zeros(n, bool))[active] = True
                M.regs_ref[sl] = np.where(active, poison, M.regs_ref[sl])
                for g0 in _groups(M, active):
                    st["acc_open"].setdefault(g0, set()).add(sl)
    return run
