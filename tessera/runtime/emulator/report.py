"""What an emulation returns: sanitizer findings and performance counters.

Finding kinds are DESIGN §11's (`global-out-of-bounds`, `shared-out-of-bounds`, `misaligned`,
`uninitialised-shared-read`, `shared-race`, `async-copy-incomplete`, `mbarrier-deadlock`,
`divergent-barrier`, `step-limit`) plus `global-race` (two threads of a launch touching one global byte,
a write among them, unordered by a barrier); `detail` says which variant (RAW/WAW/WAR race, TMA vs
cp.async bytes, a wgmma operand, ...)."""
from __future__ import annotations

from dataclasses import dataclass, field

KINDS = ("global-out-of-bounds", "shared-out-of-bounds", "misaligned", "uninitialised-shared-read", "shared-race",
         "global-race", "async-copy-incomplete", "mbarrier-deadlock", "mbarrier-reinit", "divergent-barrier", "step-limit")
MAX_FINDINGS_PER_KIND = 20


@dataclass
class Finding:
    kind: str
    kernel: str
    line: int                  # PTX line
    instruction: str           # the PTX statement
    cta: tuple | None          # (x, y, z) of the first offending CTA
    thread: int | None         # its linear thread id
    detail: str

    def __str__(self):
        where = f" (CTA {self.cta}, thread {self.thread})" if self.cta is not None else ""
        return f"{self.kind} in {self.kernel} at PTX line {self.line} `{self.instruction}`{where}: {self.detail}"


@dataclass
class EmulationReport:
    """`ck.emulate(...)`'s result. Counters are per run (all CTAs):

    - steps: instructions executed by groups of lanes (the emulator's own work unit);
    - warp_instructions: instructions executed per warp with at least one active thread (what a GPU issues),
      except spin_probes: those of warps retrying a failed mbarrier probe (their number depends on timing
      the emulator does not model: it runs a spinning lane only when nothing else can run);
    - global_requests / global_sectors: warp-level global memory instructions and the distinct 32-byte
      sectors they touch (sectors / requests = 4 for perfectly coalesced 4-byte accesses);
    - shared_requests / shared_wavefronts / shared_bank_conflicts: warp-level shared accesses, the
      wavefronts they take, and the extra wavefronts caused by bank conflicts (0 when conflict-free);
      `bank_conflicts_by_line` breaks conflicts down per PTX line."""
    kernel: str
    arch: str
    grid: tuple
    block: tuple
    checks: bool
    steps: int = 0
    warp_instructions: int = 0
    spin_probes: int = 0
    global_requests: int = 0
    global_sectors: int = 0
    shared_requests: int = 0
    shared_wavefronts: int = 0
    shared_bank_conflicts: int = 0
    bank_conflicts_by_line: dict = field(default_factory=dict)
    findings: list = field(default_factory=list)
    finding_counts: dict = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, finding: Finding):
        n = self.finding_counts.get(finding.kind, 0)
        self.finding_counts[finding.kind] = n + 1
        if n < MAX_FINDINGS_PER_KIND:
            self.findings.append(finding)

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def sectors_per_request(self) -> float:
        return self.global_sectors / self.global_requests if self.global_requests else 0.0

    def summary(self) -> str:
        head = (f"{self.kernel} [{self.arch}] grid {self.grid} block {self.block}: {self.steps} steps, "
                f"{self.warp_instructions} warp instructions, global {self.global_requests} requests / "
                f"{self.global_sectors} sectors, shared {self.shared_requests} requests / "
                f"{self.shared_bank_conflicts} bank conflicts, {self.seconds:.3f} s")
        if not self.findings:
            return head
        return head + "\n" + "\n".join(f"  {f}" for f in self.findings)
