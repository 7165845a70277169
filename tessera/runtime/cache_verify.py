"""`tessera cache verify`: every piece of state under TESSERA_CACHE_DIR checked the way its reader
checks it, and what is not sound moved aside (`cache.quarantine`) so that it is rebuilt on next
use. A launch heals the one entry it reads; this heals the rest too, and says what it found."""
from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .. import knobs
from . import cache
from .tuning_db import TuningDB

_BUCKET_RE = re.compile(r"[0-9a-f]{2}")
_INDEX_RE = re.compile(r"[0-9a-f]{64}\.json")
_GENERATED_RE = re.compile(r".+_([0-9a-f]{16})\.py")


@dataclass
class Report:
    dry_run: bool
    checked: Counter = field(default_factory=Counter)    # what -> how many looked at
    problems: Counter = field(default_factory=Counter)   # problem class -> how many found
    repaired: Counter = field(default_factory=Counter)   # problem class -> how many moved aside or removed
    unrepaired: list = field(default_factory=list)       # (path, problem) still in place
    pruned: int = 0                                      # old quarantine items removed

    @property
    def healthy(self) -> bool:
        """Nothing wrong is left: nothing found, or all of it repaired."""
        return not self.unrepaired and (not self.dry_run or not self.problems)

    def found(self, path: Path, problem: str) -> None:
        self.problems[problem] += 1
        if self.dry_run:
            self.unrepaired.append((path, problem))
        elif cache.quarantine(path, problem):
            self.repaired[problem] += 1
        else:
            self.unrepaired.append((path, problem))


def verify(dry_run: bool = False) -> Report:
    rep = Report(dry_run)
    base, r = knobs.cache_dir(), cache.root()
    if base.exists() and not base.is_dir():  # the user's own path: reported, never moved
        rep.problems["not-a-directory"] += 1
        rep.unrepaired.append((base, "not-a-directory"))
        return rep
    if cache.under(r, base) and _not_dir(r):
        rep.found(r, "not-a-directory")
    for sub in ("kernels", "index", "quarantine"):
        if _not_dir(r / sub):
            rep.found(r / sub, "not-a-directory")
    _kernels(rep, r / "kernels")
    _indexes(rep, r / "index")
    _autotune(rep)
    _generated(rep, base / "generated")
    swept = cache.sweep(dry_run)
    if swept["orphan-temp"]:
        rep.problems["orphan-temp"] += swept["orphan-temp"]
        if not dry_run:
            rep.repaired["orphan-temp"] += swept["orphan-temp"]
    rep.pruned = swept["quarantine-pruned"]
    return rep


def _not_dir(p: Path) -> bool:
    return cache.lexists(p) and not p.is_dir()


def _kernels(rep, kernels: Path):
    for bucket in cache.listdir(kernels):
        if bucket.name.startswith("."):
            continue  # a temporary: the sweep judges its age
        if not _BUCKET_RE.fullmatch(bucket.name) or not bucket.is_dir():
            rep.found(bucket, "stray" if bucket.is_dir() else "not-a-directory")
            continue
        for e in cache.listdir(bucket):
            if e.name.startswith("."):
                continue
            rep.checked["compiled kernel(s)"] += 1
            if not cache.KEY_RE.fullmatch(e.name) or e.name[:2] != bucket.name:
                rep.found(e, "stray")  # never looked up under this name
                continue
            _, _, problem = cache.check_entry(e, e.name)
            if problem:
                rep.found(e, problem)


def _indexes(rep, index: Path):
    for p in cache.listdir(index):
        if p.name.startswith("."):
            continue
        rep.checked["dim index(es)"] += 1
        if not _INDEX_RE.fullmatch(p.name):
            rep.found(p, "stray")
            continue
        _, problem = cache.check_index(p)
        if problem:
            rep.found(p, problem)


def _autotune(rep):
    db = TuningDB()
    if not cache.lexists(db.file):
        return
    rep.checked["autotune database(s)"] += 1
    problem = db.damaged()
    if problem is None:
        return
    if rep.dry_run:
        rep.found(db.file, problem)
        return
    rep.problems[problem] += 1
    if db.heal():
        rep.repaired[problem] += 1
    else:
        rep.unrepaired.append((db.file, problem))


def _generated(rep, gen: Path):
    for p in cache.listdir(gen):
        if p.name.startswith("."):
            continue
        rep.checked["generated source(s)"] += 1
        m = _GENERATED_RE.fullmatch(p.name)
        if not m:
            rep.found(p, "stray")
            continue
        if p.is_dir():
            rep.found(p, "not-a-file")
            continue
        try:
            data = p.read_bytes()
        except OSError:
            rep.found(p, "unreadable")
            continue
        if hashlib.sha256(data).hexdigest()[:16] != m.group(1):  # the name holds the source's digest
            rep.found(p, "checksum")


def format_report(rep: Report) -> str:
    lines = [f"cache directory: {cache.root()}"]
    checked = ", ".join(f"{n} {what}" for what, n in sorted(rep.checked.items())) or "nothing (empty cache)"
    lines.append(f"checked: {checked}")
    if not rep.problems:
        lines.append("no problems found")
    for problem, n in sorted(rep.problems.items()):
        fixed = rep.repaired.get(problem, 0)
        verb = "would repair" if rep.dry_run else f"repaired {fixed}"
        lines.append(f"  {problem:16s} {n:4d} found, {verb}  ({cache.PROBLEMS.get(problem, '')})")
    if rep.repaired:
        lines.append(f"repaired {sum(rep.repaired.values())}: moved to {cache.quarantine_dir()} (or removed); "
                     "rebuilt on next use")
    if rep.pruned:
        lines.append(f"{'would prune' if rep.dry_run else 'pruned'} {rep.pruned} old quarantine item(s)")
    for path, problem in rep.unrepaired if not rep.dry_run else ():
        lines.append(f"NOT repaired: {path} ({problem})")
    lines.append("healthy" if rep.healthy else ("dry run: nothing changed" if rep.dry_run else "unhealthy"))
    return "\n".join(lines)
