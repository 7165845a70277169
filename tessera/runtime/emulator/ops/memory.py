"""ld / st on .param, .global, .shared and generic addresses, scalar and `.v2/.v4` vectors.

A vector access is one access of its whole size (alignment, bounds and counters), its elements go
to / come from the registers of the `{...}` operand. Cache and eviction modifiers (`.ca`, `.cg`,
`.nc`, `.L1::...`) do not change semantics and are ignored. A generic address in the shared window
(see cvta) is a shared access; any other generic address is global."""
from __future__ import annotations

import re

import numpy as np

from .. import values as V
from ..memory import SHARED_WINDOW, global_load, global_store
from .common import unsupported

_SPACES = ("global", "shared", "param", "local", "const")


def _space(mods):
    for m in mods:
        base = m.split("::")[0]
        if base in _SPACES:
            return base
    return "generic"


def _vec(mods):
    return next((int(m[1:]) for m in mods if re.fullmatch(r"v\d", m)), 1)


def _reg_type(t, nb):
    """The type each element is written / read as."""
    return t if t[0] in "sf" or t == "bf16" else "b%d" % (8 * nb)


def _split_generic(M, addrs, em):
    """Generic addresses → (shared mask, global mask) over the active lanes."""
    a = np.broadcast_to(np.asarray(addrs, np.uint64), (M.n,))
    shared = (a >= np.uint64(SHARED_WINDOW)) & (a < np.uint64(SHARED_WINDOW + (1 << 32)))
    act = np.ones(M.n, bool) if em is None else em
    return a, act & shared, act & ~shared


def ld(ins, M):
    mods = ins.mods
    space = _space(mods)
    if space in ("local", "const"):
        raise unsupported(ins, f"ld.{space} (tessera emits no {space} memory)")
    t = V.instruction_types(mods)[-1]
    nb = V.type_bits(t) // 8
    count = _vec(mods)
    dst = ins.operands[0]
    dsts = dst[1] if dst[0] == "vec" else [dst]
    et = _reg_type(t, nb)
    wrs = [M.writer(d, et, ins) for d in dsts]
    W = V.UINT[8 * nb]
    cd = V.compute_dtype(et)
    addr = M.address(ins.operands[1], ins)
    if isinstance(addr, tuple):                       # ld.param
        _, name, off = addr
        raw = V.wrap_int(M.params[name], 64) >> (8 * off)
        bits = np.array(raw & ((1 << (8 * nb)) - 1), W)
        value = bits.view(cd)[()] if et != "bf16" else V.bf16_to_f32(bits)
        return lambda em: wrs[0](value, em)

    def put(words, em):
        for i, wr in enumerate(wrs):
            col = words[:, i]
            wr(V.bf16_to_f32(col) if et == "bf16" else col.view(cd), em)

    if space == "shared":
        return lambda em: put(M.shared.load(ins, addr(), nb, count, em), em)
    if space == "global":
        return lambda em: put(global_load(M, ins, addr(), nb, count, em), em)

    def generic(em):
        a, sh, gl = _split_generic(M, addr(), em)
        words = np.zeros((M.n, count), W)
        if sh.any():
            words[sh] = M.shared.load(ins, (a - np.uint64(SHARED_WINDOW)).astype(np.int64), nb, count, sh)[sh]
        if gl.any():
            words[gl] = global_load(M, ins, a, nb, count, gl)[gl]
        put(words, em)
    return generic


def st(ins, M):
    mods = ins.mods
    space = _space(mods)
    if space in ("local", "const", "param"):
        raise unsupported(ins, f"st.{space}")
    t = V.instruction_types(mods)[-1]
    nb = V.type_bits(t) // 8
    count = _vec(mods)
    src = ins.operands[1]
    srcs = src[1] if src[0] == "vec" else [src]
    rds = [M.reader(s, "b%d" % (8 * nb), ins) for s in srcs]
    W = V.UINT[8 * nb]
    addr = M.address(ins.operands[0], ins)

    def words():
        out = np.empty((M.n, count), W)
        for i, r in enumerate(rds):
            out[:, i] = r()
        return out

    if space == "shared":
        return lambda em: M.shared.store(ins, addr(), nb, words(), em)
    if space == "global":
        return lambda em: global_store(M, ins, addr(), nb, words(), em)

    def generic(em):
        a, sh, gl = _split_generic(M, addr(), em)
        w = words()
        if sh.any():
            M.shared.store(ins, (a - np.uint64(SHARED_WINDOW)).astype(np.int64), nb, w, sh)
        if gl.any():
            global_store(M, ins, a, nb, w, gl)
    return generic
