"""cp.async (sm_80): per-thread asynchronous copies global → shared, in commit groups.

`cp.async.{ca,cg}.shared.global [dst], [src], cp-size{, src-size}` reads the first src-size bytes
at issue (the rest of the cp-size bytes are zero-filled, not read) and delivers them into shared
memory only when a `cp.async.wait_group N` of the issuing thread retires the group: every group of
that thread except the N most recently committed ones. Until then the destination bytes are
*pending*: a read of them is an `async-copy-incomplete` finding. The issuing thread is the writer of
the bytes for the race check, so another thread reading them after its own wait but without a
barrier is a RAW race, as on the hardware. TMA (`cp.async.bulk.tensor`) is in hopper.py.
"""
from __future__ import annotations

import numpy as np

from ..memory import count_shared, global_load
from .common import unsupported


def _state(M):
    st = M.async_state.get("cp")
    if st is None:
        st = {"committed": np.zeros(M.n, np.int64), "records": []}
        M.async_state["cp"] = st
    return st


def cp(ins, M):
    mods = ins.mods
    if mods[:1] != ["async"]:
        raise unsupported(ins)
    if "bulk" in mods:
        from .hopper import tma_load
        return tma_load(ins, M)
    if mods[1] == "commit_group":
        return lambda em: _commit(M, em)
    if mods[1] in ("wait_group", "wait_all"):
        keep = ins.operands[0][1] if mods[1] == "wait_group" else 0
        if mods[1] == "wait_all":           # commit, then wait for everything
            def wait_all(em):
                _commit(M, em)
                deliver(M, em, 0)
            return wait_all
        return lambda em: deliver(M, em, keep)
    if "shared" not in mods or "global" not in mods:
        raise unsupported(ins)
    ops = ins.operands
    size = ops[2][1]
    if size not in (4, 8, 16):
        raise unsupported(ins, f"cp-size {size}")
    dst = M.address(ops[0], ins)
    src = M.address(ops[1], ins)
    srcsize = M.reader(ops[3], "u32", ins) if len(ops) > 3 and ops[3][0] != "sink" else None
    nb = min(size, 8)

    def issue(em):
        n = M.n
        st = _state(M)
        active = np.ones(n, bool) if em is None else em.copy()
        ss = np.full(n, size, np.int64) if srcsize is None else \
            np.broadcast_to(np.asarray(srcsize()).astype(np.int64), (n,))
        full = active & (ss >= size)
        data = np.zeros((n, size), np.uint8)
        a = np.broadcast_to(np.asarray(src(), np.uint64), (n,))
        if full.any():
            words = global_load(M, ins, a, nb, size // nb, None if full.all() else full)
            data[full] = np.ascontiguousarray(words[full]).view(np.uint8).reshape(-1, size)
        part = active & (ss > 0) & (ss < size)
        for j in range(size):                      # partial source sizes: byte by byte, only the bytes read
            mj = part & (ss > j)
            if mj.any():
                data[mj, j] = global_load(M, ins, a + np.uint64(j), 1, 1, mj)[mj, 0]
        sh = M.shared
        idx, off, flat = sh.resolve(ins, dst(), size, em, True)
        if M.counters:
            act = np.zeros(n, bool)
            act[np.arange(n) if idx is None else idx] = True
            count_shared(M, ins, act, np.broadcast_to(np.asarray(dst()).astype(np.int64), (n,)), size)
        lanes = np.arange(n) if idx is None else idx
        if M.checks:
            sh.check_write(ins, idx, flat, size, who="cp.async")
            sh.pending[(flat[:, None] + np.arange(size)).reshape(-1)] = True
        st["records"].append([lanes, st["committed"][lanes].copy(), flat, data[lanes]])
    return issue


def _commit(M, em):
    st = _state(M)
    if em is None:
        st["committed"] += 1
    else:
        st["committed"][em] += 1


def deliver(M, em, keep):
    """Retire, for the lanes of `em`, every committed group except the `keep` most recent."""
    st = M.async_state.get("cp")
    if st is None:
        return
    committed = st["committed"]
    sh = M.shared
    remaining = []
    for lanes, gid, flat, data in st["records"]:
        due = gid < committed[lanes] - keep
        if em is not None:
            due &= em[lanes]
        if due.any():
            f = flat[due]
            ix = (f[:, None] + np.arange(data.shape[1])).reshape(-1)
            sh.data[ix] = data[due].reshape(-1)
            if M.checks:
                sh.pending[ix] = False
        if not due.all():
            rest = ~due
            remaining.append([lanes[rest], gid[rest], flat[rest], data[rest]])
    st["records"] = remaining
