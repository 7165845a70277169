"""Global and shared memory, with the per-lane checks and the coalescing / bank-conflict counters.

Global memory: each buffer (a kernel argument, a TMA descriptor) lives at a fake address
`(i + 1) << 40`, so every access decodes to (buffer, offset) and is bounds-checked exactly per lane.

Shared memory: one byte array per CTA of the wave. With checks on, every byte also records whether
it was ever written (uninitialised reads), whether an async copy (cp.async / TMA) has landed it yet,
and its last writer and reader thread in the current barrier epoch (reset at `bar.sync`); a read of
a byte another thread wrote since the last barrier is a RAW race, a write after another thread's
read or write a WAR / WAW race.

Counters follow the hardware's rules: a warp-level global access costs one request and as many
32-byte sectors as it touches; a warp-level shared access is served in phases (the whole warp for
accesses up to 4 bytes per thread, half-warps for 8, quarter-warps for 16) and each phase takes as
many wavefronts as the largest number of distinct 4-byte words it needs from one of the 32 banks.
"""
from __future__ import annotations

import numpy as np

from .values import UINT

GLOBAL_SHIFT = 40
OFFSET_MASK = (1 << GLOBAL_SHIFT) - 1
SHARED_WINDOW = 1 << 47         # generic address of shared offset 0 (cvta.shared / cvta.to.shared)


class GlobalMemory:
    """Device buffers at fake addresses. Buffers are padded to 16 bytes so aligned accesses can use
    typed views; bounds checks use the real size."""

    def __init__(self):
        self.buffers, self.sizes, self.starts, self.names = [], [], [], []

    def alloc(self, data, name: str, lead: int = 0) -> int:
        """Place `data` at `lead` bytes into a new buffer (bytes before it are out of bounds); returns the
        fake address of its first byte. A lead keeps a host view's address alignment (mod 256)."""
        raw = np.frombuffer(memoryview(np.ascontiguousarray(data)).cast("B"), np.uint8) if len(data) else \
            np.zeros(0, np.uint8)
        size = lead + raw.size
        buf = np.zeros((size + 15) // 16 * 16 or 16, np.uint8)
        buf[lead:size] = raw
        self.buffers.append(buf)
        self.sizes.append(size)
        self.starts.append(lead)
        self.names.append(name)
        return (len(self.buffers) << GLOBAL_SHIFT) + lead

    def decode(self, addr: int):
        return (addr >> GLOBAL_SHIFT) - 1, addr & OFFSET_MASK

    def bytes_at(self, addr: int, nbytes: int) -> np.ndarray:
        b, off = self.decode(addr)
        return self.buffers[b][off:off + nbytes]


def _distinct_per_row(keys):
    """keys: (rows, k) int64 with -1 for unused entries → number of distinct used keys per row."""
    s = np.sort(keys, axis=1)
    distinct = 1 + (s[:, 1:] != s[:, :-1]).sum(1)
    return distinct - (s[:, 0] == -1)


def warp_rows(M, em, values):
    """(n,) per-lane values → (warps, 32) rows with -1 for inactive lanes (lanes are warp-contiguous)."""
    if em is not None:
        values = np.where(em, values, -1)
    return values.reshape(-1, 32)


def count_global(M, em, addrs, nbytes):
    """Requests and sectors of one warp-level global access of `nbytes` per lane."""
    if M.nthreads % 32:
        return
    a = addrs.astype(np.int64) if isinstance(addrs, np.ndarray) else np.full(M.n, int(addrs), np.int64)
    first = warp_rows(M, em, a >> 5)
    last = warp_rows(M, em, (a + (nbytes - 1)) >> 5)
    used = first[:, 0] >= 0 if em is None else (first >= 0).any(1)
    per = _distinct_per_row(np.concatenate([first, last], axis=1))
    M.report.global_requests += int(used.sum())
    M.report.global_sectors += int(per.sum())


def count_shared(M, ins, lanes_active, offs, nbytes):
    """Wavefronts and bank conflicts of one warp-level shared access (`lanes_active` (n,) bool or None).
    Loops repeat the same address patterns, so results are memoised per instruction and pattern."""
    if M.nthreads % 32:
        return
    offs = np.broadcast_to(np.asarray(offs), (M.n,))
    key = (ins.index, nbytes, offs.tobytes(), None if lanes_active is None else lanes_active.tobytes())
    memo = M.bank_memo.get(key)
    if memo is None:
        memo = _bank_stats(M, lanes_active, offs, nbytes)
        if len(M.bank_memo) < 4096:
            M.bank_memo[key] = memo
    requests, total, ideal = memo
    rep = M.report
    rep.shared_requests += requests
    rep.shared_wavefronts += total
    if total > ideal:
        rep.shared_bank_conflicts += total - ideal
        rep.bank_conflicts_by_line[ins.line] = rep.bank_conflicts_by_line.get(ins.line, 0) + total - ideal


def _bank_stats(M, lanes_active, offs, nbytes):
    """(warp requests, wavefronts, ideal wavefronts) of one shared access."""
    phases = 1 if nbytes <= 4 else min(nbytes // 4, 4)
    per_lane = max(1, nbytes // 4)
    words = offs.astype(np.int64) >> 2
    if per_lane > 1:
        words = words[:, None] + np.arange(per_lane)
    else:
        words = words[:, None]
    if lanes_active is not None:
        words = np.where(lanes_active[:, None], words, -1)
    rows = words.reshape(-1, (32 // phases) * per_lane)          # one row per (warp, phase)
    used = (rows >= 0).any(1)
    s = np.sort(rows, axis=1)
    first = np.ones_like(s, bool)
    first[:, 1:] = s[:, 1:] != s[:, :-1]
    first &= s >= 0
    r, c = np.nonzero(first)
    counts = np.bincount(r * 32 + (s[r, c] & 31), minlength=rows.shape[0] * 32).reshape(-1, 32)
    wave = counts.max(1)
    return int(used.reshape(-1, phases).any(1).sum()), int(wave.sum()), int(used.sum())


class SharedMemory:
    """The shared memory of the CTAs of one wave, flat: CTA c's byte o is at c * stride + o."""

    def __init__(self, M, ncta, size):
        self.M = M
        self.size = int(size)
        self.stride = (self.size + 15) // 16 * 16 or 16
        total = ncta * self.stride
        self.data = np.zeros(total, np.uint8)
        self.checks = M.checks
        self.busy = None           # per-byte count of in-flight wgmma groups reading it (ops/wgmma.py)
        if self.checks:
            self.init = np.zeros(total, bool)
            self.pending = np.zeros(total, bool)
            self.writer = np.full(total, -1, np.int32)
            self.reader = np.full(total, -1, np.int32)
            self.stamp = np.zeros(total, np.int64)
            # the thread whose st.shared (generic proxy) wrote a byte with no fence.proxy.async since, else -1:
            # the async proxy (wgmma, TMA) may not see such a write (fence_proxy_async, ops/hopper.py)
            self.unfenced = np.full(total, -1, np.int32)

    # -- addressing ------------------------------------------------------------------------
    def resolve(self, ins, offs, nbytes, em, write):
        """Active lane indices, their CTA-local offsets and flat byte addresses; out-of-bounds and
        misaligned lanes reported (and out-of-bounds ones dropped)."""
        M = self.M
        offs = np.broadcast_to(np.asarray(offs), (M.n,)).astype(np.int64)
        if em is None:
            idx, off = None, offs
        else:
            idx = np.nonzero(em)[0]
            off = offs[idx]
        bad = (off < 0) | (off + nbytes > self.size)
        if bad.any():
            j = int(np.argmax(bad))
            lane = j if idx is None else int(idx[j])
            M.finding("shared-out-of-bounds", ins, f"{'store' if write else 'load'} of {nbytes} bytes at shared "
                      f"offset {int(off[j])} (shared memory is {self.size} bytes); {int(bad.sum())} threads",
                      lane=lane)
            keep = ~bad
            idx = np.nonzero(keep)[0] if idx is None else idx[keep]
            off = off[keep]
        if self.checks and off.size and (off % nbytes).any():
            j = int(np.argmax(off % nbytes != 0))
            M.finding("misaligned", ins, f"shared access of {nbytes} bytes at offset {int(off[j])} is not "
                      f"{nbytes}-byte aligned", lane=j if idx is None else int(idx[j]))
        cta = M.cta_of if idx is None else M.cta_of[idx]
        flat = cta * self.stride + off
        return idx, off, flat

    def _bytes(self, flat, nbytes):
        return (flat[:, None] + np.arange(nbytes)).reshape(-1) if nbytes > 1 else flat

    def _tids(self, idx, nbytes):
        t = self.M.tid if idx is None else self.M.tid[idx]
        return np.repeat(t.astype(np.int32), nbytes) if nbytes > 1 else t.astype(np.int32)

    def _first_lane(self, idx, bad, nbytes):
        j = int(np.argmax(bad)) // nbytes
        return j if idx is None else int(idx[j])

    # -- checks ----------------------------------------------------------------------------
    def check_read(self, ins, idx, flat, nbytes, async_ok=False, who="load"):
        M = self.M
        ix = self._bytes(flat, nbytes)
        if not ix.size:
            return
        tid = self._tids(idx, nbytes)
        uninit = ~self.init[ix]
        if uninit.any():
            M.finding("uninitialised-shared-read", ins, f"{who} reads {int(uninit.sum())} shared bytes never written "
                      f"(first at offset {int(ix[np.argmax(uninit)] % self.stride)})",
                      lane=self._first_lane(idx, uninit, nbytes))
        if not async_ok:
            pend = self.pending[ix]
            if pend.any():
                M.finding("async-copy-incomplete", ins, f"{who} reads shared bytes an async copy (cp.async / TMA) "
                          f"has not delivered yet (offset {int(ix[np.argmax(pend)] % self.stride)}): a missing or "
                          "too-weak wait", lane=self._first_lane(idx, pend, nbytes))
        w = self.writer[ix]
        raw = (w >= 0) & (w != tid)
        if raw.any():
            j = int(np.argmax(raw))
            M.finding("shared-race", ins, f"RAW: {who} reads shared offset {int(ix[j] % self.stride)} written by "
                      f"thread {int(w[j])} since the last barrier", lane=self._first_lane(idx, raw, nbytes))
        r = self.reader[ix]
        self.reader[ix] = np.where((r == -1) | (r == tid), tid, -2)

    def check_write(self, ins, idx, flat, nbytes, who="store"):
        M = self.M
        ix = self._bytes(flat, nbytes)
        if not ix.size:
            return
        tid = self._tids(idx, nbytes)
        w = self.writer[ix]
        waw = (w >= 0) & (w != tid)
        if waw.any():
            j = int(np.argmax(waw))
            M.finding("shared-race", ins, f"WAW: {who} to shared offset {int(ix[j] % self.stride)} also written by "
                      f"thread {int(w[j])} since the last barrier", lane=self._first_lane(idx, waw, nbytes))
        r = self.reader[ix]
        war = ((r >= 0) & (r != tid)) | (r == -2)
        if war.any():
            j = int(np.argmax(war))
            other = "several threads" if r[j] == -2 else f"thread {int(r[j])}"
            M.finding("shared-race", ins, f"WAR: {who} to shared offset {int(ix[j] % self.stride)} read by {other} "
                      "since the last barrier", lane=self._first_lane(idx, war, nbytes))
        seq = np.arange(ix.size)
        self.stamp[ix] = seq
        dup = self.stamp[ix] != seq
        if dup.any():
            M.finding("shared-race", ins, f"WAW: two threads of one {who} write shared offset "
                      f"{int(ix[np.argmax(dup)] % self.stride)}", lane=self._first_lane(idx, dup, nbytes))
        if self.busy is not None:
            inflight = self.busy[ix] > 0
            if inflight.any():
                M.finding("shared-race", ins, f"WAR: {who} overwrites shared bytes that a committed wgmma group still "
                          "reads (its wgmma.wait_group has not retired it)", lane=self._first_lane(idx, inflight, nbytes))
        pend = self.pending[ix]
        if pend.any():
            M.finding("async-copy-incomplete", ins, f"{who} overwrites shared bytes an async copy has not delivered "
                      f"yet (offset {int(ix[np.argmax(pend)] % self.stride)})", lane=self._first_lane(idx, pend, nbytes))
        self.writer[ix] = tid
        self.init[ix] = True

    def new_epoch(self, ctas):
        """A barrier completed in these CTAs: earlier accesses are ordered before later ones."""
        for c in np.asarray(ctas).tolist():
            sl = slice(c * self.stride, (c + 1) * self.stride)
            self.writer[sl] = -1
            self.reader[sl] = -1

    # -- data ------------------------------------------------------------------------------
    def gather(self, flat, nbytes, count=1):
        """(lanes, count) words of nbytes each, starting at the flat byte addresses."""
        if (flat % nbytes == 0).all() if flat.size else True:
            view = self.data.view(UINT[nbytes * 8])
            ix = (flat // nbytes)[:, None] + np.arange(count)
            return view[ix]
        ix = flat[:, None] + np.arange(nbytes * count)
        return self.data[ix].reshape(-1, count, nbytes).copy().view(UINT[nbytes * 8]).reshape(-1, count)

    def scatter(self, flat, nbytes, words):
        """words: (lanes, count) of nbytes each."""
        count = words.shape[1]
        if (flat % nbytes == 0).all() if flat.size else True:
            view = self.data.view(UINT[nbytes * 8])
            view[(flat // nbytes)[:, None] + np.arange(count)] = words
            return
        raw = np.ascontiguousarray(words.astype(UINT[nbytes * 8])).view(np.uint8).reshape(len(flat), -1)
        self.data[flat[:, None] + np.arange(nbytes * count)] = raw

    def load(self, ins, offs, nbytes, count, em):
        """Per-lane loads of `count` consecutive words of `nbytes`: an (n, count) array (0 for inactive)."""
        M = self.M
        size = nbytes * count
        idx, off, flat = self.resolve(ins, offs, size, em, False)
        if M.counters:
            act = None if idx is None else _lanes_mask(M, idx)
            count_shared(M, ins, act, offs, size)
        if self.checks:
            self.check_read(ins, idx, flat, size)
        words = self.gather(flat, nbytes, count)
        if idx is None and words.shape[0] == M.n:
            return words
        out = np.zeros((M.n, count), UINT[nbytes * 8])
        out[np.arange(M.n) if idx is None else idx] = words
        return out

    def store(self, ins, offs, nbytes, words, em):
        M = self.M
        count = words.shape[1]
        size = nbytes * count
        idx, off, flat = self.resolve(ins, offs, size, em, True)
        if M.counters:
            act = None if idx is None else _lanes_mask(M, idx)
            count_shared(M, ins, act, offs, size)
        if self.checks:
            self.check_write(ins, idx, flat, size)
            self.unfenced[self._bytes(flat, size)] = self._tids(idx, size)
        if idx is not None:
            words = words[idx]
        self.scatter(flat, nbytes, words)


def _lanes_mask(M, idx):
    m = np.zeros(M.n, bool)
    m[idx] = True
    return m


# -- global accesses -------------------------------------------------------------------------
def global_resolve(M, ins, addrs, nbytes, em, write):
    """(lane indices or None, buffer index per lane, offset per lane, single buffer or None)."""
    gm = M.gmem
    a = np.broadcast_to(np.asarray(addrs, dtype=np.uint64), (M.n,))
    if M.counters:
        count_global(M, em, a, nbytes)
    if em is None:
        idx, aa = None, a
    else:
        idx = np.nonzero(em)[0]
        aa = a[idx]
    if not aa.size:
        return idx, None, aa.astype(np.int64), None
    buf = (aa >> np.uint64(GLOBAL_SHIFT)).astype(np.int64) - 1
    off = (aa & np.uint64(OFFSET_MASK)).astype(np.int64)
    b0 = int(buf[0])
    single = b0 if (buf == b0).all() and 0 <= b0 < len(gm.buffers) else None
    if single is not None:
        bad = (off < gm.starts[single]) | (off + nbytes > gm.sizes[single])
    else:
        sizes = np.array(gm.sizes + [0], np.int64)
        starts = np.array(gm.starts + [0], np.int64)
        invalid = (buf < 0) | (buf >= len(gm.buffers))
        safe = np.where(invalid, -1, buf)
        bad = invalid | (off < starts[safe]) | (off + nbytes > sizes[safe])
    if bad.any():
        j = int(np.argmax(bad))
        lane = j if idx is None else int(idx[j])
        bj = int(buf[j])
        what = (f"buffer '{gm.names[bj]}' ({gm.sizes[bj] - gm.starts[bj]} bytes) at offset "
                f"{int(off[j]) - gm.starts[bj]}"
                if 0 <= bj < len(gm.buffers) else "no buffer")
        M.finding("global-out-of-bounds", ins, f"{'store' if write else 'load'} of {nbytes} bytes at address "
                  f"{hex(int(aa[j]))}: {what}; {int(bad.sum())} threads", lane=lane)
        keep = ~bad
        idx = np.nonzero(keep)[0] if idx is None else idx[keep]
        buf, off = buf[keep], off[keep]
    if M.checks and off.size and (off % nbytes).any():
        j = int(np.argmax(off % nbytes != 0))
        M.finding("misaligned", ins, f"global access of {nbytes} bytes at offset {int(off[j])} of buffer "
                  f"'{gm.names[int(buf[j])]}' is not {nbytes}-byte aligned", lane=j if idx is None else int(idx[j]))
    if M.checks and off.size:
        M.global_races.check(ins, idx, buf, off, nbytes, write)
    return idx, buf, off, single


class GlobalRaces:
    """Per-byte last writer (global thread id) and the barrier epoch of its CTA at the write, for the
    buffers a launch writes (allocated on a buffer's first store). A read or write of a byte another
    thread wrote is a race unless that thread is in the same CTA and a barrier separates the two: a
    tile program's statements are sequential, so a value one thread stores and another loads needs a
    bar.sync in between; threads of different CTAs cannot be ordered within one launch at all."""

    def __init__(self, M):
        self.M = M
        self.writer, self.epoch_at = {}, {}
        ncta = M.grid[0] * M.grid[1] * M.grid[2]
        self.cta_epoch = np.zeros(ncta, np.int64)

    def new_epoch(self, ctas):
        self.cta_epoch[self.M.cta_base + np.asarray(ctas)] += 1

    def check(self, ins, idx, buf, off, nbytes, write):
        M = self.M
        lanes = np.arange(M.n) if idx is None else idx
        gcta = M.cta_base + M.cta_of[lanes]
        gid = gcta * M.nthreads + M.tid[lanes]
        ep = self.cta_epoch[gcta]
        for b in np.unique(buf).tolist():
            sel = buf == b
            w = self.writer.get(b)
            if w is None:
                if not write:
                    continue
                size = len(M.gmem.buffers[b])
                w = self.writer[b] = np.full(size, -1, np.int64)
                self.epoch_at[b] = np.zeros(size, np.int64)
            ix = (off[sel][:, None] + np.arange(nbytes)).reshape(-1)
            me = np.repeat(gid[sel], nbytes)
            my_cta = np.repeat(gcta[sel], nbytes)
            my_ep = np.repeat(ep[sel], nbytes)
            last = w[ix]
            other_cta = last // M.nthreads
            bad = (last >= 0) & (last != me) & ((other_cta != my_cta) | (self.epoch_at[b][ix] == my_ep))
            if bad.any():
                j = int(np.argmax(bad))
                lane = int(lanes[sel][j // nbytes])
                other = int(last[j])
                who = (f"thread {other % M.nthreads} of this CTA since the last barrier" if other_cta[j] == my_cta[j]
                       else f"a thread of another CTA ({other // M.nthreads} in launch order)")
                M.finding("global-race", ins, f"{'WAW' if write else 'RAW'}: {'store to' if write else 'load of'} "
                          f"offset {int(ix[j])} of buffer '{M.gmem.names[b]}' written by {who}", lane=lane)
            if write:
                w[ix] = me
                self.epoch_at[b][ix] = my_ep


def global_load(M, ins, addrs, nbytes, count, em):
    """(n, count) words of `nbytes` (0 for inactive or out-of-bounds lanes)."""
    size = nbytes * count
    idx, buf, off, single = global_resolve(M, ins, addrs, size, em, False)
    W = UINT[nbytes * 8]
    out = np.zeros((M.n, count), W)
    if not off.size:
        return out
    dst = slice(None) if idx is None else idx
    if single is not None and not (off % nbytes).any():
        out[dst] = M.gmem.buffers[single].view(W)[(off // nbytes)[:, None] + np.arange(count)]
        return out
    for b in np.unique(buf).tolist():
        sel = buf == b
        raw = M.gmem.buffers[b][off[sel][:, None] + np.arange(size)]
        vals = raw.reshape(-1, count, nbytes).copy().view(W).reshape(-1, count)
        if idx is None:
            out[np.nonzero(sel)[0]] = vals
        else:
            out[idx[sel]] = vals
    return out


def global_store(M, ins, addrs, nbytes, words, em):
    count = words.shape[1]
    size = nbytes * count
    idx, buf, off, single = global_resolve(M, ins, addrs, size, em, True)
    if not off.size:
        return
    W = UINT[nbytes * 8]
    vals = words if idx is None else words[idx]
    if single is not None and not (off % nbytes).any():
        M.gmem.buffers[single].view(W)[(off // nbytes)[:, None] + np.arange(count)] = vals
        return
    for b in np.unique(buf).tolist():
        sel = buf == b
        raw = np.ascontiguousarray(vals[sel].astype(W)).view(np.uint8).reshape(-1, size)
        M.gmem.buffers[b][off[sel][:, None] + np.arange(size)] = raw
