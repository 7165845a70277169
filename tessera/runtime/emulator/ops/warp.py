"""Warp collectives: shfl.sync, ldmatrix, mma.sync (the machine runs them once every live lane of
the warp has arrived).

Fragment layouts are the PTX ISA's (groupID = lane / 4, threadID_in_group = lane % 4):
- ldmatrix .m8n8 .x1/.x2/.x4: lanes 8j..8j+7 give the row addresses of matrix j (16 bytes each);
  lane l receives row l/4, columns 2(l%4) and 2(l%4)+1 of every matrix (with .trans: the transposed
  element pair, rows 2(l%4) and 2(l%4)+1 of column l/4), low half first.
- mma.sync .m16n8k16 .row.col (bf16 or f16 inputs, f32 accumulators): a-registers a0..a3 hold rows
  g and g+8 at columns 2t, 2t+1 (a0, a1) and 2t+8, 2t+9 (a2, a3); b0, b1 hold rows 2t, 2t+1 and
  2t+8, 2t+9 of column g; c/d registers c0..c3 hold row g (c0, c1) and g+8 (c2, c3), columns 2t, 2t+1.
  Products are summed exactly (f64) and rounded once to f32.
"""
from __future__ import annotations

import re

import numpy as np

from .. import values as V
from .common import unsupported, whole_warps


def _partial_warp(M, ins, em, what):
    if not whole_warps(M, em):
        w = em.reshape(-1, 32)
        bad = int(np.argmax(~(w.all(1) | ~w.any(1))))
        lane = bad * 32 + int(np.argmax(w[bad]))
        M.finding("divergent-barrier", ins, f"{what} with a full member mask executed by part of a warp "
                  f"({int(w[bad].sum())} of 32 threads; the others exited)", lane=lane)


def shfl(ins, M):
    mode = ins.mods[1]
    if mode not in ("bfly", "down", "up", "idx"):
        raise unsupported(ins)
    ops = ins.operands
    if ops[0][0] not in ("reg", "sink"):
        raise unsupported(ins, "the `d|p` destination form")
    wr = M.writer(ops[0], "b32", ins)
    a = M.reader(ops[1], "b32", ins)
    b = M.reader(ops[2], "u32", ins)
    c = M.reader(ops[3], "u32", ins)

    def run(em):
        if em is not None:
            _partial_warp(M, ins, em, "shfl.sync")
        n = M.n
        lane = M.tid % 32
        bb = np.broadcast_to(np.asarray(b()).astype(np.int64) & 31, (n,))
        cc = np.broadcast_to(np.asarray(c()).astype(np.int64), (n,))
        clamp, seg = cc & 31, (cc >> 8) & 31
        lo = lane & seg
        hi = lo | (clamp & ~seg)
        if mode == "bfly":
            j = lane ^ bb
            ok = j <= hi
        elif mode == "down":
            j = lane + bb
            ok = j <= hi
        elif mode == "up":
            j = lane - bb
            ok = j >= lo
        else:
            j = lo | (bb & ~seg)
            ok = j <= hi
        src = np.where(ok, M.lane - lane + j, M.lane)
        av = np.broadcast_to(np.asarray(a()), (n,))
        wr(av[src], em)
    return run


def ldmatrix(ins, M):
    x = next(int(m[1:]) for m in ins.mods if re.fullmatch(r"x[124]", m))
    if "m8n8" not in ins.mods or "b16" not in ins.mods:
        raise unsupported(ins)
    trans = "trans" in ins.mods
    dst = ins.operands[0]
    dsts = dst[1] if dst[0] == "vec" else [dst]
    if len(dsts) != x:
        raise unsupported(ins, f"{len(dsts)} destination registers for .x{x}")
    wrs = [M.writer(d, "b32", ins) for d in dsts]
    addr = M.address(ins.operands[1], ins)
    lanes = np.arange(32)
    r_, c_ = lanes // 4, 2 * (lanes % 4)

    def run(em):
        if em is not None:
            _partial_warp(M, ins, em, "ldmatrix")
        n = M.n
        nw = n // 32
        provider = (M.tid % 32) < 8 * x
        mask = provider if em is None else provider & em
        words = M.shared.load(ins, np.asarray(addr()).astype(np.int64), 8, 2, mask)   # one 16-byte row per lane
        rows = np.ascontiguousarray(words).view(np.uint16).reshape(nw, 32, 8)[:, :8 * x].reshape(nw, x, 8, 8)
        for j, wr in enumerate(wrs):
            if trans:
                e0, e1 = rows[:, j, c_, r_], rows[:, j, c_ + 1, r_]
            else:
                e0, e1 = rows[:, j, r_, c_], rows[:, j, r_, c_ + 1]
            wr((e0.astype(np.uint32) | (e1.astype(np.uint32) << np.uint32(16))).reshape(-1), em)
    return run


def mma(ins, M):
    shape = next(m for m in ins.mods if re.fullmatch(r"m\d+n\d+k\d+", m))
    dty, aty, bty, cty = ins.mods[-4:]
    if shape != "m16n8k16" or "row" not in ins.mods or "col" not in ins.mods or aty not in ("bf16", "f16") \
            or bty != aty or dty != "f32" or cty != "f32":
        raise unsupported(ins, "only mma.sync.aligned.m16n8k16.row.col.f32.{bf16,f16}.{bf16,f16}.f32")
    d_ops, a_ops, b_ops, c_ops = (ins.operands[i][1] for i in range(4))
    if (len(d_ops), len(a_ops), len(b_ops), len(c_ops)) != (4, 4, 2, 4):
        raise unsupported(ins, "m16n8k16 takes 4 d, 4 a, 2 b and 4 c registers")
    a_rd = [M.reader(r, "b32", ins) for r in a_ops]
    b_rd = [M.reader(r, "b32", ins) for r in b_ops]
    c_rd = [M.reader(r, "f32", ins) for r in c_ops]
    wrs = [M.writer(r, "f32", ins) for r in d_ops]
    lanes = np.arange(32)
    g, t = lanes // 4, lanes % 4
    # element (register i, half h) of lane l sits at these rows / columns of A, B and C/D
    a_row = np.stack([g + 8 * (i % 2) for i in range(4) for _ in range(2)])            # (8, 32)
    a_col = np.stack([2 * t + 8 * (i // 2) + h for i in range(4) for h in range(2)])
    b_row = np.stack([2 * t + 8 * i + h for i in range(2) for h in range(2)])            # (4, 32)
    b_col = np.stack([g for _ in range(4)])
    c_row = np.stack([g + 8 * (i // 2) for i in range(4)])                              # (4, 32)
    c_col = np.stack([2 * t + (i % 2) for i in range(4)])

    def halves(regs):
        bits = np.stack([np.broadcast_to(np.asarray(r()), (M.n,)) for r in regs]).astype(np.uint32)
        pair = np.stack([bits & np.uint32(0xFFFF), bits >> np.uint32(16)], 1)             # (regs, 2, n)
        vals = V.bf16_to_f32(pair) if aty == "bf16" else V.f16_bits_to_f32(pair)
        return vals.reshape(len(regs) * 2, -1, 32)                                        # (elements, warps, 32)

    def run(em):
        if em is not None:
            _partial_warp(M, ins, em, "mma.sync")
        nw = M.n // 32
        A = np.zeros((nw, 16, 16))
        B = np.zeros((nw, 16, 8))
        C = np.zeros((nw, 16, 8))
        A[:, a_row, a_col] = halves(a_rd).transpose(1, 0, 2)
        B[:, b_row, b_col] = halves(b_rd).transpose(1, 0, 2)
        cv = np.stack([np.broadcast_to(np.asarray(r()), (M.n,)) for r in c_rd]).reshape(4, nw, 32)
        C[:, c_row, c_col] = cv.transpose(1, 0, 2)
        D = (A @ B + C).astype(np.float32)[:, c_row, c_col]                               # (warps, 4, 32)
        for i, wr in enumerate(wrs):
            wr(D[:, i].reshape(-1), em)
    return run
