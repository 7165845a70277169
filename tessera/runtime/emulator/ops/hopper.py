"""sm_90a asynchronous machinery: mbarriers with arrival counts, transaction bytes and phases, and
2-D TMA loads (`cp.async.bulk.tensor.2d ... .mbarrier::complete_tx::bytes`) with the 128B swizzle.

mbarrier: `init` sets the expected arrival count; `arrive` (and `arrive.expect_tx`, which first adds
transaction bytes) decrements the pending count; a TMA copy subtracts its bytes when it lands. When
both reach zero the phase completes: the phase bit flips and the pending count resets.
`try_wait.parity p, [bar], parity` is true once the phase of that parity has completed.

TMA: the descriptor is a fake global address registered by the launch glue with the inputs of
`encode_2d` (base, dims innermost first, row stride, box, element size, swizzle); the box is read
with zero fill outside the tensor and written with the 128-byte swizzle: byte offset o goes to
o ^ (((o >> 7) & 7) << 4) (CuTe's Swizzle<3,4,3>), which needs a 1024-byte aligned destination.

Checks: the bytes a TMA writes are pending until a thread's try_wait observes the completion of
the phase they were counted in; reading them earlier (ld.shared, ldmatrix, wgmma) is an
`async-copy-incomplete` finding. Adversarial mode (on with checks): the first probe of every
completed phase fails, as a try_wait that times out may, so code that ignores the predicate reads
pending bytes. A barrier probed many times with no arrival or transaction in between, while its
transaction count or arrivals never complete, is an `mbarrier-deadlock`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..memory import GLOBAL_SHIFT, OFFSET_MASK
from .common import unsupported

SPIN_LIMIT = 4096


@dataclass
class TmaDescriptor:
    base: int                   # fake global address of element (0, 0)
    dims: tuple                 # (inner, outer) elements
    row_stride: int             # bytes between rows
    box: tuple                  # (inner, outer) elements
    elem: int                   # bytes per element
    swizzle: int = 128
    name: str = ""


class Barrier:
    __slots__ = ("expected", "pending", "tx", "phase", "completions", "probed", "guard")

    def __init__(self, count):
        self.expected = self.pending = int(count)
        self.tx = 0
        self.phase = 0
        self.completions = 0
        self.probed = set()     # completion numbers whose first (adversarial) probe already failed
        self.guard = []         # (flat byte range) of TMA bytes counted in the current phase

    def maybe_complete(self, sh, checks):
        if self.pending <= 0 and self.tx == 0:
            self.phase ^= 1
            self.completions += 1
            self.pending = self.expected
            return True
        return False

    def __repr__(self):
        return f"(expected {self.expected}, pending arrivals {self.pending}, tx bytes {self.tx}, phase {self.phase})"


def _barriers(M):
    st = M.async_state.get("mbar")
    if st is None:
        st = {"bars": {}, "spins": 0, "delivered": {}}
        M.async_state["mbar"] = st
    return st


def _keys(M, ins, addr, em):
    """(flat barrier address, lane) for every active lane."""
    offs = np.broadcast_to(np.asarray(addr()).astype(np.int64), (M.n,))
    idx = np.arange(M.n) if em is None else np.nonzero(em)[0]
    sh = M.shared
    out = []
    for i in idx.tolist():
        o = int(offs[i])
        if o < 0 or o + 8 > sh.size or o % 8:
            M.finding("shared-out-of-bounds" if (o < 0 or o + 8 > sh.size) else "misaligned", ins,
                      f"mbarrier at shared offset {o} (shared memory is {sh.size} bytes; mbarriers are 8-byte "
                      "aligned)", lane=i)
            continue
        out.append((int(M.cta_of[i]) * sh.stride + o, i))
    return out


def _get(M, ins, st, key, lane):
    b = st["bars"].get(key)
    if b is None:
        M.fail("mbarrier-deadlock", ins, f"mbarrier at shared offset {key % M.shared.stride} used before "
               "mbarrier.init (it can never complete)", lane=lane)
    return b


def mbarrier(ins, M):
    kind = ins.mods[0]
    ops = ins.operands
    if kind == "init":
        addr = M.address(ops[0], ins)
        count = M.reader(ops[1], "u32", ins)

        def init(em):
            st = _barriers(M)
            cnt = np.broadcast_to(np.asarray(count()), (M.n,))
            for key, lane in _keys(M, ins, addr, em):
                if M.checks and key in st["bars"]:
                    M.finding("mbarrier-reinit", ins, f"mbarrier.init of the live mbarrier at shared offset "
                              f"{key % M.shared.stride} (PTX: undefined unless mbarrier.inval came first)", lane=lane)
                st["bars"][key] = Barrier(int(cnt[lane]))
                if M.checks:
                    M.shared.init[key:key + 8] = True
            st["spins"] = 0
        return init
    if kind in ("arrive", "expect_tx", "arrive_drop"):
        if "expect_tx" in ins.mods or kind == "expect_tx":
            addr = M.address(ops[1] if kind == "arrive" else ops[0], ins)
            tx = M.reader(ops[2] if kind == "arrive" else ops[1], "u32", ins)
        else:
            addr, tx = M.address(ops[1], ins), None
        state = M.writer(ops[0], "b64", ins) if kind == "arrive" else None

        def arrive(em):
            st = _barriers(M)
            txv = None if tx is None else np.broadcast_to(np.asarray(tx()), (M.n,))
            for key, lane in _keys(M, ins, addr, em):
                b = _get(M, ins, st, key, lane)
                if txv is not None:
                    b.tx += int(txv[lane])
                if kind != "expect_tx":
                    b.pending -= 1
                b.maybe_complete(M.shared, M.checks)
            st["spins"] = 0
            if state is not None:
                state(np.zeros(M.n, np.uint64), em)
        return arrive
    if kind in ("try_wait", "test_wait"):
        if "parity" not in ins.mods:
            raise unsupported(ins, "only the .parity form")
        wr = M.writer(ops[0], "pred", ins)
        addr = M.address(ops[1], ins)
        parity = M.reader(ops[2], "u32", ins)

        def try_wait(em):
            st = _barriers(M)
            par = np.broadcast_to(np.asarray(parity()).astype(np.int64) & 1, (M.n,))
            res = np.zeros(M.n, bool)
            fresh = set()
            any_fail = False
            for key, lane in _keys(M, ins, addr, em):
                b = _get(M, ins, st, key, lane)
                p = int(par[lane])
                done = b.phase != p
                if done and M.adversarial:
                    token = b.completions
                    if token not in b.probed or (key, token) in fresh:
                        fresh.add((key, token))
                        done = False
                res[lane] = done
                M.spinning[lane] = not done
                if not done:
                    M.spin_clock += 1
                    M.spin_stamp[lane] = M.spin_clock
                if done:
                    for lo, hi in st["delivered"].pop((key, p), []):
                        if M.checks:
                            M.shared.pending[lo:hi] = False
                elif (key, b.completions) not in fresh:
                    any_fail = True
                    last = (key, b)
            for key, token in fresh:
                st["bars"][key].probed.add(token)
            if any_fail:
                st["spins"] += 1
                if st["spins"] > SPIN_LIMIT:
                    key, b = last
                    M.fail("mbarrier-deadlock", ins, f"threads spin on the mbarrier at shared offset "
                           f"{key % M.shared.stride} {b}: its phase can never complete (a wrong expect_tx byte "
                           "count, a missing arrive, or a TMA that never issues)")
            wr(res, em)
        return try_wait
    if kind == "inval":
        addr = M.address(ops[0], ins)

        def inval(em):
            st = _barriers(M)
            for key, _ in _keys(M, ins, addr, em):
                st["bars"].pop(key, None)
        return inval
    raise unsupported(ins)


def fence(ins, M):
    """`fence.proxy.async[.shared::cta]`: the executing threads' earlier st.shared writes become visible to
    the async proxy (wgmma operands, TMA). Other fences order nothing the emulator reorders."""
    if "proxy" not in ins.mods or not any(m.startswith("async") for m in ins.mods) or not M.checks:
        return lambda em: None

    def run(em):
        sh = M.shared
        lanes = np.arange(M.n) if em is None else np.nonzero(em)[0]
        for cta in np.unique(M.cta_of[lanes]):
            tids = M.tid[lanes[M.cta_of[lanes] == cta]]
            part = sh.unfenced[int(cta) * sh.stride:(int(cta) + 1) * sh.stride]
            part[np.isin(part, tids)] = -1
    return run


def _swizzle128(lin):
    return lin ^ (((lin >> 7) & 7) << 4)


def tma_load(ins, M):
    mods = ins.mods
    if "tensor" not in mods or "2d" not in mods or not any(m.startswith("mbarrier") for m in mods):
        raise unsupported(ins, "only 2-D TMA loads completing on an mbarrier")
    ops = ins.operands
    dst = M.address(ops[0], ins)
    tmap = M.reader(ops[1][1], "u64", ins)
    coords = [M.reader(c, "s32", ins) for c in ops[1][2][1]]
    bar = M.address(ops[2], ins)

    def run(em):
        st = _barriers(M)
        n = M.n
        sh = M.shared
        d_off = np.broadcast_to(np.asarray(dst()).astype(np.int64), (n,))
        tm = np.broadcast_to(np.asarray(tmap()), (n,))
        cs = [np.broadcast_to(np.asarray(c()).astype(np.int64), (n,)) for c in coords]
        for key, lane in _keys(M, ins, bar, em):
            d = M.tmaps.get(int(tm[lane]))
            if d is None:
                M.fail("global-out-of-bounds", ins, f"the TMA descriptor operand {hex(int(tm[lane]))} is not a "
                       "descriptor of this launch", lane=lane)
            bw, bh = d.box
            es = d.elem
            c0, c1 = int(cs[0][lane]), int(cs[1][lane])
            tile = np.zeros((bh, bw * es), np.uint8)
            buf = M.gmem.buffers[(d.base >> GLOBAL_SHIFT) - 1]
            base = d.base & OFFSET_MASK
            lo, hi = max(c0, 0), min(c0 + bw, d.dims[0])
            if hi > lo:
                for r in range(max(c1, 0), min(c1 + bh, d.dims[1])):
                    g = base + r * d.row_stride + lo * es
                    tile[r - c1, (lo - c0) * es:(hi - c0) * es] = buf[g:g + (hi - lo) * es]
            nbytes = tile.size
            s0 = int(d_off[lane])
            if s0 < 0 or s0 + nbytes > sh.size:
                M.fail("shared-out-of-bounds", ins, f"TMA box of {nbytes} bytes at shared offset {s0} (shared "
                       f"memory is {sh.size} bytes)", lane=lane)
            if d.swizzle == 128:
                if s0 % 1024:
                    M.finding("misaligned", ins, f"TMA destination at shared offset {s0} is not 1024-byte aligned, "
                              "which the 128B swizzle needs", lane=lane)
                flat_tile = np.empty(nbytes, np.uint8)
                flat_tile[_swizzle128(np.arange(nbytes))] = tile.reshape(-1)
            else:
                flat_tile = tile.reshape(-1)
            c = int(M.cta_of[lane]) * sh.stride
            if M.checks:
                rng = slice(c + s0, c + s0 + nbytes)
                busy = getattr(sh, "busy", None)
                if busy is not None and busy[rng].any():
                    M.finding("shared-race", ins, "WAR: TMA overwrites shared bytes that a committed wgmma group "
                              "still reads (its wgmma.wait_group has not retired it)", lane=lane)
                if sh.pending[rng].any():
                    M.finding("async-copy-incomplete", ins, "TMA overwrites shared bytes an earlier async copy "
                              "has not delivered", lane=lane)
                if (sh.unfenced[rng] >= 0).any():
                    M.finding("shared-race", ins, "WAW across proxies: TMA overwrites shared bytes a thread stored "
                              "(st.shared) with no fence.proxy.async since", lane=lane)
                sh.init[rng] = True
                sh.pending[rng] = True
            sh.data[c + s0:c + s0 + nbytes] = flat_tile
            b = _get(M, ins, st, key, lane)
            st["delivered"].setdefault((key, b.phase), []).append((c + s0, c + s0 + nbytes))
            b.tx -= nbytes
            b.maybe_complete(sh, M.checks)
        st["spins"] = 0
    return run


def setmaxnreg(ins, M):
    """`setmaxnreg.{inc,dec}.sync.aligned.u32 N` (sm_90a): a warpgroup's per-thread register budget. Values
    are unaffected (the emulator has no register file limit); N must be a multiple of 8 in 24..256."""
    n = ins.operands[0][1]
    if not isinstance(n, int) or not 24 <= n <= 256 or n % 8 or not {"inc", "dec"} & set(ins.mods):
        raise unsupported(ins, "setmaxnreg takes .inc/.dec and a register count, a multiple of 8 in 24..256")
    return lambda em: None
