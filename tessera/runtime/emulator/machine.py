"""The lane-vectorised machine: many CTAs at once as NumPy lanes, per-lane program counters,
synchronising instructions as rendezvous points.

Lane i of a wave is thread `i % nthreads` of the wave's CTA `i // nthreads`; CTAs are independent,
so a large grid runs as several waves. Every register is a NumPy array with one element per lane.

Scheduling: the instructions are cut into basic blocks, and every lane's pc is a block index. The
scheduler runs the lowest pc among runnable lanes, block after block, until the group branches or
meets other lanes. For LLVM's layouts this reconverges lanes at join blocks; where LLVM places a
loop header after its body, lowest-pc alone would let one group pass a `bar.sync` that the others
have not reached, so every synchronising instruction (bar.sync per CTA; shfl, ldmatrix, mma per
warp; wgmma per warpgroup) is its own block where lanes wait until every live lane of their group
has arrived. If every live lane waits and no group can complete, that is a divergent barrier (or
a deadlock), reported with the pcs where the lanes wait.
"""
from __future__ import annotations

import gc

import numpy as np

from ...errors import EmulatorError, SanitizerError
from . import values as V
from .memory import SharedMemory
from .report import Finding

SYNC_SCOPE = {"bar": "cta", "barrier": "cta", "shfl": "warp", "ldmatrix": "warp", "mma": "warp", "wgmma": "warpgroup"}
BRANCHES = ("bra",)
EXITS = ("ret", "exit")
MAX_WAVE_LANES = 8192


class Block:
    __slots__ = ("start", "end", "fns", "instructions", "terminator", "target", "sync", "bar_count", "length")

    def __init__(self, start, end, instructions):
        self.start, self.end = start, end
        self.instructions = instructions
        self.fns, self.terminator, self.target, self.sync = [], None, None, None
        self.bar_count = None    # a named barrier's thread count (`bar.sync id, count`)
        self.length = end - start


def split_blocks(kernel):
    """Basic blocks: leaders are the entry, branch targets, the instruction after a branch or exit,
    and every synchronising instruction (a block of its own)."""
    insts = kernel.instructions
    leaders = {0, len(insts)}
    leaders.update(kernel.labels.values())
    for ins in insts:
        if ins.opcode in BRANCHES or ins.opcode in EXITS:
            leaders.add(ins.index + 1)
        if ins.opcode in SYNC_SCOPE and ins.pred is None:
            leaders.add(ins.index)
            leaders.add(ins.index + 1)
    starts = sorted(x for x in leaders if x <= len(insts))
    blocks = [Block(a, b, insts[a:b]) for a, b in zip(starts, starts[1:]) if a < b]
    return blocks


class Machine:
    """One launch of one kernel: `run()` executes the grid wave by wave."""

    def __init__(self, kernel, gmem, grid, block, params, *, dynamic_shared=0, tmaps=None, checks=True,
                 adversarial=None, report, max_steps=20_000_000, arch="sm_90a", counters=True):
        self.kernel, self.gmem, self.report = kernel, gmem, report
        self.grid = tuple(int(g) for g in grid) + (1,) * (3 - len(tuple(grid)))
        self.block = tuple(int(b) for b in block) + (1,) * (3 - len(tuple(block)))
        self.nthreads = self.block[0] * self.block[1] * self.block[2]
        self.checks = checks
        self.adversarial = checks if adversarial is None else adversarial
        self.counters = counters
        self.max_steps = max_steps
        self.arch = arch
        self.params = {name: int(v) for (name, _, _), v in zip(kernel.params, params)}
        self.dynamic_shared = int(dynamic_shared)
        self.tmaps = tmaps or {}
        k = kernel
        self.dynamic_offset = ((k.static_shared + k.dynamic_align - 1) // k.dynamic_align * k.dynamic_align
                               if k.dynamic_sym else k.static_shared)
        self.shared_size = self.dynamic_offset + (self.dynamic_shared if k.dynamic_sym else 0)
        self.shared_symbols = {nm: off for nm, (off, _) in k.shared_syms.items()}
        if k.dynamic_sym:
            self.shared_symbols[k.dynamic_sym] = self.dynamic_offset
        self.slots = {name: i for i, name in enumerate(k.reg_bits)}
        self.slot_bits = [k.reg_bits[name] for name in k.reg_bits]
        self.steps = 0
        self.blocks = split_blocks(kernel)
        # kernels that spin on mbarriers: retries after a failed probe count apart (report.spin_probes)
        self.spins = any(i.opcode == "mbarrier" and any(m in ("try_wait", "test_wait") for m in i.mods)
                         for b in self.blocks for i in b.instructions)
        self._current = None

    # -- findings --------------------------------------------------------------------------
    def finding(self, kind, ins, detail, lane=None):
        cta = thread = None
        if lane is not None:
            lane = int(lane)
            c = int(self.cta_base + lane // self.nthreads)
            cta = (c % self.grid[0], (c // self.grid[0]) % self.grid[1], c // (self.grid[0] * self.grid[1]))
            thread = lane % self.nthreads
        self.report.add(Finding(kind, self.kernel.name, ins.line if ins is not None else 0,
                                ins.text if ins is not None else "", cta, thread, detail))

    def fail(self, kind, ins, detail, lane=None):
        """A finding that stops the run (deadlocks, the step limit)."""
        self.finding(kind, ins, detail, lane)
        raise SanitizerError(self.report.findings, self.report)

    # -- registers and operands --------------------------------------------------------------
    def slot(self, name, ins):
        s = self.slots.get(name)
        if s is None:
            raise EmulatorError(f"`{ins.text}` uses the undeclared register {name} (PTX line {ins.line})")
        return s

    def reader(self, op, t, ins):
        """A zero-argument function returning operand `op` as PTX type `t` (an (n,) array or a scalar)."""
        kind = op[0]
        cd = V.compute_dtype(t)
        if kind == "reg":
            s = self.slot(op[1], ins)
            regs = self.regs_ref
            sbits = self.slot_bits[s]
            if t == "pred":
                if sbits != 1:
                    return lambda: regs[s] != 0
                return lambda: regs[s]
            if sbits == 1:
                return lambda: regs[s].astype(cd)
            w = V.type_bits(t)
            if t == "bf16":
                if sbits == 16:
                    return lambda: V.bf16_to_f32(regs[s])
                return lambda: V.bf16_to_f32(regs[s].astype(np.uint16))
            if sbits == w:
                return lambda: regs[s].view(cd)
            st = V.UINT[w]
            if cd == st:
                return lambda: regs[s].astype(st)
            return lambda: regs[s].astype(st).view(cd)
        if kind == "imm":
            v = op[1]
            if t == "pred":
                c = np.bool_(v)
            elif t[0] == "f" and t != "f16x2":
                c = cd(v)
            elif t == "bf16":
                c = np.float32(v)
            else:
                w = V.type_bits(t)
                c = np.array(V.wrap_int(v, w), V.UINT[w]).view(cd)[()]
            return lambda: c
        if kind == "immf32":
            bits = np.array(op[1], np.uint32)
            c = bits.view(np.float32)[()] if t[0] == "f" or t == "bf16" else bits.astype(cd)[()]
            if t == "f64":
                c = np.float64(c)
            return lambda: c
        if kind == "immf64":
            bits = np.array(op[1], np.uint64)
            c = bits.view(np.float64)[()] if t[0] == "f" else bits.view(cd)[()]
            return lambda: c
        if kind == "sreg":
            name = op[1]
            return lambda: self.special[name].astype(cd)
        if kind == "sym":
            nm = op[1]
            if nm in self.shared_symbols:
                c = cd(self.shared_symbols[nm])
                return lambda: c
            if nm in self.params:
                c = np.array(V.wrap_int(self.params[nm], 64), np.uint64).astype(cd)[()]
                return lambda: c
            raise EmulatorError(f"`{ins.text}`: unknown symbol {nm} (PTX line {ins.line})")
        raise EmulatorError(f"`{ins.text}`: cannot read operand {op} as .{t} (PTX line {ins.line})")

    def writer(self, op, t, ins):
        """A function `(value, em)` storing a value of PTX type `t` into register operand `op` for the
        lanes of `em` (None: all lanes)."""
        if op[0] == "sink":
            return lambda value, em: None
        if op[0] != "reg":
            raise EmulatorError(f"`{ins.text}`: cannot write to {op} (PTX line {ins.line})")
        s = self.slot(op[1], ins)
        regs = self.regs_ref
        sbits = self.slot_bits[s]
        n_ref = self
        if sbits == 1:
            def convert(value):
                return np.asarray(value).astype(np.bool_, copy=False) if t == "pred" else np.asarray(value) != 0
        elif t == "bf16":
            def convert(value):
                return V.f32_to_bf16(value).astype(V.UINT[sbits], copy=False)
        else:
            cd = V.compute_dtype(t)
            w = V.type_bits(t)
            st = V.UINT[max(w, 8)]
            tgt = V.UINT[sbits]

            sign_extend = t[0] == "s" and sbits > w

            def convert(value):
                v = np.asarray(value)
                if v.dtype != cd:
                    v = v.astype(cd)
                if st is tgt:
                    return v.view(st)
                if sign_extend:
                    return v.astype(V.SINT[sbits]).view(tgt)
                return v.view(st).astype(tgt)

        def write(value, em):
            bits = convert(value)
            if em is None:
                if bits.ndim == 0 or bits.shape[0] != n_ref.n:
                    bits = np.broadcast_to(bits, (n_ref.n,)).copy()
                regs[s] = bits
            else:
                regs[s] = np.where(em, bits, regs[s])
        return write

    def address(self, op, ins):
        """A function returning the per-lane byte addresses of a memory operand `[base+imm]` (u64), or
        ("param", name, offset) for a kernel parameter."""
        base, off = op[1], op[2]
        if base[0] == "sym" and base[1] in self.params:
            return ("param", base[1], off)
        rd = self.reader(base, "u64", ins)
        o = np.uint64(off & 0xFFFFFFFFFFFFFFFF)
        if off == 0:
            return rd
        return lambda: rd() + o

    # -- running -----------------------------------------------------------------------------
    def _compile(self):
        from .ops import compile_instruction
        for b in self.blocks:
            b.fns = []
            last = b.instructions[-1]
            body = b.instructions
            if last.opcode in BRANCHES or last.opcode in EXITS:
                b.terminator = last
                body = body[:-1]
                if last.opcode in BRANCHES:
                    tgt = last.operands[-1][1]
                    start = self.kernel.labels[tgt]
                    b.target = next(i for i, bb in enumerate(self.blocks) if bb.start == start) \
                        if start < len(self.kernel.instructions) else len(self.blocks)
            for ins in body:
                if ins.opcode in ("bar", "barrier") and not self._barrier_form(ins):
                    raise EmulatorError(f"the emulator implements `bar.sync id` (the whole CTA) and `bar.sync id, "
                                        f"count` (count a multiple of 32), not `{ins.text}` (PTX line {ins.line})")
                if ins.opcode in SYNC_SCOPE and ins.pred is not None:
                    raise EmulatorError(f"a predicated synchronising instruction `{ins.text}` (PTX line {ins.line}) "
                                        "is not emulated")
            if len(body) == 1 and body[0].opcode in SYNC_SCOPE and body[0].pred is None:
                b.sync = SYNC_SCOPE[body[0].opcode]
                if body[0].opcode in ("bar", "barrier") and len(body[0].operands) == 2:
                    b.bar_count = body[0].operands[1][1]
            for ins in body:
                b.fns.append(compile_instruction(ins, self))

    def run(self):
        self.regs_ref = []
        gc_was_on = gc.isenabled()
        gc.disable()           # thousands of closures and small arrays: cyclic GC passes only cost time here
        try:
            self._run_all()
        finally:
            if gc_was_on:
                gc.enable()
        return self.report

    def _run_all(self):
        self._compile()
        if self.checks:
            from .memory import GlobalRaces
            self.global_races = GlobalRaces(self)
        total_ctas = self.grid[0] * self.grid[1] * self.grid[2]
        per_wave = max(1, MAX_WAVE_LANES // self.nthreads)
        with np.errstate(all="ignore"):
            for first in range(0, total_ctas, per_wave):
                self._run_wave(first, min(per_wave, total_ctas - first))

    def _setup_wave(self, first, ncta):
        nt = self.nthreads
        self.cta_base = first
        self.ncta = ncta
        self.n = n = ncta * nt
        lane = np.arange(n, dtype=np.int64)
        self.lane = lane
        self.cta_of = lane // nt
        tid = lane % nt
        self.tid = tid
        self.warp_of = lane // 32 if nt % 32 == 0 else self.cta_of * ((nt + 31) // 32) + tid // 32
        c = first + self.cta_of
        g, b = self.grid, self.block
        u32 = np.uint32
        self.special = {
            "tid.x": (tid % b[0]).astype(u32), "tid.y": ((tid // b[0]) % b[1]).astype(u32),
            "tid.z": (tid // (b[0] * b[1])).astype(u32),
            "ctaid.x": (c % g[0]).astype(u32), "ctaid.y": ((c // g[0]) % g[1]).astype(u32),
            "ctaid.z": (c // (g[0] * g[1])).astype(u32),
            "ntid.x": np.full(n, b[0], u32), "ntid.y": np.full(n, b[1], u32), "ntid.z": np.full(n, b[2], u32),
            "nctaid.x": np.full(n, g[0], u32), "nctaid.y": np.full(n, g[1], u32), "nctaid.z": np.full(n, g[2], u32),
            "laneid": (tid % 32).astype(u32), "warpid": (tid // 32).astype(u32),
            "nwarpid": np.full(n, (nt + 31) // 32, u32), "dynamic_smem_size": np.full(n, self.dynamic_shared, u32),
            "clock": np.zeros(n, u32), "clock64": np.zeros(n, np.uint64)}
        self.regs_ref[:] = [np.zeros(n, V.storage_dtype(bits)) for bits in self.slot_bits]
        self.shared = SharedMemory(self, ncta, self.shared_size)
        self.async_state = {}
        self.spinning = np.zeros(self.n, bool)   # lanes whose last mbarrier probe failed: scheduled last,
        self.spin_stamp = np.zeros(self.n, np.int64)   # the longest-failed first
        self.spin_clock = 0
        self.bank_memo = {}

    def _count(self, report, warp_instructions, mask):
        """Issued warp instructions: those of lanes retrying a failed mbarrier probe are spin probes (how many
        a GPU issues depends on timing the emulator does not model)."""
        if self.spins and self.spinning[mask].all():
            report.spin_probes += warp_instructions
        else:
            report.warp_instructions += warp_instructions

    def active_warps(self, mask):
        if mask is None:
            return self.nwarps
        if self.nthreads % 32 == 0:
            return int(mask.reshape(-1, 32).any(1).sum())
        return int(np.unique(self.warp_of[mask]).size)

    def _run_wave(self, first, ncta):
        self._setup_wave(first, ncta)
        n = self.n
        self.nwarps = int(self.warp_of[-1]) + 1
        blocks = self.blocks
        nblocks = len(blocks)
        pc = np.zeros(n, np.int64)
        live = np.ones(n, bool)
        waiting = np.zeros(n, bool)
        self.live = live
        report = self.report
        regs = self.regs_ref
        max_steps = self.max_steps
        while True:
            runnable = live & ~waiting
            if not runnable.any():
                if not live.any():
                    break
                if not self._release(pc, live, waiting):   # threads that exited no longer hold a barrier
                    self._deadlock(pc, live)
                continue
            # a lane spinning on an mbarrier yields to every other runnable lane (independent thread
            # scheduling: a divergent thread of its warp may be the one that completes the barrier)
            eager = runnable & ~self.spinning
            if eager.any():
                pick = eager
            else:
                # the longest-failed lane retries, with every spinning lane at its instruction (a warp probes
                # together and leaves the wait together, as on a GPU, instead of lane by lane)
                oldest = np.flatnonzero(runnable & (self.spin_stamp == self.spin_stamp[runnable].min()))[0]
                pick = runnable & (pc == pc[oldest])
            cur = int(pc[pick].min())
            mask = pick & (pc == cur)
            later = live & ~mask & (pc > cur)
            nxt = int(pc[later].min()) if later.any() else nblocks
            em = None if mask.all() else mask
            while True:
                if cur >= nblocks:            # fell off the end: an implicit exit
                    live &= ~mask
                    break
                blk = blocks[cur]
                if blk.sync is not None:
                    self._rendezvous(blk, cur, mask, pc, live, waiting)
                    break
                fns = blk.fns
                nf = len(fns)
                if nf:
                    self.steps += nf
                    if self.counters:
                        self._count(report, nf * self.active_warps(em), mask)
                    self._em = em
                    for f in fns:
                        f(em)
                    if self.steps > max_steps:
                        self.fail("step-limit", blk.instructions[-1],
                                  f"more than {max_steps} steps (an infinite loop, or a spin on a barrier that "
                                  "never completes); raise max_steps if the kernel is just long")
                term = blk.terminator
                if term is None:
                    cur += 1
                    if cur >= nxt:
                        pc[mask] = cur
                        break
                    continue
                self.steps += 1
                if self.steps > max_steps:
                    self.fail("step-limit", term, f"more than {max_steps} steps (an infinite loop); raise max_steps "
                              "if the kernel is just long")
                if self.counters:
                    self._count(report, self.active_warps(em), mask)
                if term.opcode in EXITS:
                    if term.pred is None:
                        live &= ~mask
                        break
                    p = regs[self.slots[term.pred]]
                    gone = (~p if term.negate else p) & mask
                    live &= ~gone
                    mask = mask & ~gone
                    if not mask.any():
                        break
                    em = None if mask.all() else mask
                    cur += 1
                    if cur >= nxt:
                        pc[mask] = cur
                        break
                    continue
                tgt = blk.target
                if term.pred is None:
                    if em is None and tgt < nxt:
                        cur = tgt
                        continue
                    pc[mask] = tgt
                    break
                p = regs[self.slots[term.pred]]
                taken = (~p if term.negate else p) & mask
                if em is None:
                    if taken.all():
                        cur = tgt
                        continue
                    if not taken.any():
                        cur += 1
                        continue
                pc[mask] = cur + 1
                pc[taken] = tgt
                break

    def _group_ids(self, scope):
        if scope == "cta":
            return self.cta_of
        if scope == "warp":
            return self.warp_of
        return self.cta_of * 1_000_000 + self.tid // 128

    @staticmethod
    def _barrier_form(ins):
        """`bar.sync id` or `bar.sync id, count` with immediates (count a multiple of 32)."""
        ops = ins.operands
        return ins.mods[:1] == ["sync"] and len(ops) in (1, 2) and all(o[0] == "imm" for o in ops) \
            and (len(ops) == 1 or ops[1][1] % 32 == 0)

    def _rendezvous(self, blk, cur, mask, pc, live, waiting):
        """Lanes of `mask` arrive at the synchronising block `cur`; groups whose every live lane is
        there run it and go on, the others wait. A named barrier with a thread count (`bar.sync 1, 256`)
        completes in a CTA once that many of its threads arrived; for the race checks it starts a new
        epoch for the whole CTA (the threads outside it are the producer warps, which only use async
        copies tracked by their own barriers)."""
        ins = blk.instructions[0]
        gid = self._group_ids(blk.sync)
        present = mask | (waiting & (pc == cur))
        missing = live & ~present
        if blk.bar_count is not None:
            counts = np.bincount(self.cta_of[present], minlength=self.ncta)
            ok = counts[self.cta_of] >= blk.bar_count
            go, wait = present & ok, present & ~ok
        elif missing.any():
            incomplete = np.isin(gid, np.unique(gid[missing]))
            go = present & ~incomplete
            wait = present & incomplete
        else:
            go, wait = present, np.zeros_like(present)
        waiting[wait] = True
        pc[wait] = cur
        if not go.any():
            return
        waiting[go] = False
        em = None if go.all() else go
        self.steps += 1
        if self.counters:
            self.report.warp_instructions += self.active_warps(em)
        if blk.sync == "cta" and ins.opcode in ("bar", "barrier"):
            if self.checks:
                ctas = np.unique(self.cta_of[go])
                self.shared.new_epoch(ctas)
                self.global_races.new_epoch(ctas)
        else:
            blk.fns[0](em)
        pc[go] = cur + 1

    def _release(self, pc, live, waiting):
        """Nothing is runnable: retry every synchronising instruction lanes wait at (the lanes they waited
        for may have exited since). True if some group went on."""
        for cur in sorted(set(pc[waiting & live].tolist())):
            before = int(waiting.sum())
            self._rendezvous(self.blocks[cur], cur, np.zeros_like(live), pc, live, waiting)
            if int(waiting.sum()) < before:
                return True
        return False

    def _deadlock(self, pc, live):
        blocks = self.blocks
        where = sorted(set(pc[live].tolist()))
        parts = []
        for p in where[:4]:
            ins = blocks[p].instructions[0] if p < len(blocks) else None
            cnt = int((live & (pc == p)).sum())
            parts.append(f"{cnt} threads at PTX line {ins.line} `{ins.text}`" if ins else f"{cnt} threads past the end")
        first = int(np.nonzero(live)[0][0])
        ins = blocks[int(pc[first])].instructions[0] if int(pc[first]) < len(blocks) else None
        self.fail("divergent-barrier", ins,
                  "every live thread waits at a synchronising instruction that its CTA / warp / warpgroup never "
                  "completes (threads of one group at different barriers, or a collective under divergence): "
                  + "; ".join(parts), lane=first)
