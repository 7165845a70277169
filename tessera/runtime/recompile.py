"""Why a kernel compiled again: each specialisation a kernel compiles is described by the parts of
its cache key (target, constexprs, specialised dims, argument dtypes and stride classes, launch
options); when a kernel that already has specialisations in this process needs a new one, the
difference to the nearest earlier one is recorded, printed with `TESSERA_LOG=recompile`, and
returned by `ts.explain_recompiles()`. MLIR-free."""
from __future__ import annotations

import contextlib
import sys
import threading
import weakref

from .. import knobs

_LOCK = threading.Lock()
_EVENTS: list["RecompileEvent"] = []
_SEEN: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # kernel -> its specialisations' descriptors
_QUIET = threading.local()

# What each part of the key is called in a message, by the descriptor's section name.
_KINDS = {"target": "target", "constexpr": "constexpr", "dim": "dim", "dtype": "dtype",
          "stride": "stride class", "rank": "rank", "option": "option", "param": "parameter",
          "shape": "shape", "length": "list length"}


class RecompileEvent:
    def __init__(self, kernel, where, changes, count, from_disk):
        self.kernel, self.where, self.changes, self.count, self.from_disk = kernel, where, changes, count, from_disk

    def __str__(self):
        file, line = self.where
        head = f"{self.kernel} recompiled at {file}:{line} (specialisation {self.count + 1})"
        if self.from_disk:
            head += ", loaded from the disk cache"
        return head + ": " + "; ".join(_describe(c) for c in self.changes)

    def __repr__(self):
        return f"<RecompileEvent {self}>"


class RecompileReport(str):
    """The text of `ts.explain_recompiles()`; `.events` holds the structured records."""

    events: list[RecompileEvent]


def _describe(change):
    kind, name, old, new = change
    label = _KINDS.get(kind, kind)
    if old is None:
        return f"{label} '{name}' is new ({new})"
    if new is None:
        return f"{label} '{name}' is gone (was {old})"
    return f"{label} '{name}' changed {old} -> {new}"


def _diff(old: dict, new: dict):
    changes = []
    for section in new:
        a, b = old.get(section, {}), new[section]
        for name in list(a) + [n for n in b if n not in a]:
            va, vb = a.get(name), b.get(name)
            if va != vb:
                changes.append((section, name, va, vb))
    return changes


@contextlib.contextmanager
def quiet():
    """Specialisations made inside (an autotuner compiling every config) are remembered, not reported."""
    depth = getattr(_QUIET, "depth", 0)
    _QUIET.depth = depth + 1
    try:
        yield
    finally:
        _QUIET.depth = depth


def record(kernel, name: str, descriptor: dict, where, from_disk: bool) -> RecompileEvent | None:
    """Note that `kernel` now has the specialisation `descriptor` ({section: {name: value}}).
    Returns the event when this is a recompilation (the kernel had other specialisations)."""
    with _LOCK:
        seen = _SEEN.setdefault(kernel, [])
        if descriptor in seen:
            return None
        event = None
        if seen and not getattr(_QUIET, "depth", 0):
            nearest = min(seen, key=lambda d: len(_diff(d, descriptor)))
            event = RecompileEvent(name, where, _diff(nearest, descriptor) or [("param", "?", None, "unknown")],
                                   len(seen), from_disk)
            _EVENTS.append(event)
        seen.append(descriptor)
    if event is not None and "recompile" in knobs.log():
        print(f"[tessera] {event}", file=sys.stderr)
    return event


def explain_recompiles(kernel=None, clear: bool = False) -> RecompileReport:
    """Every recompilation seen in this process (of `kernel` only, when given — a kernel object or
    its name), one line each, saying which part of the key changed."""
    name = getattr(kernel, "__name__", kernel)
    with _LOCK:
        events = [e for e in _EVENTS if name is None or e.kernel == name]
        if clear:
            _EVENTS[:] = [e for e in _EVENTS if e not in events]
    text = "\n".join(str(e) for e in events) if events else "no recompilations"
    report = RecompileReport(text)
    report.events = events
    return report


def reset():
    with _LOCK:
        _EVENTS.clear()
        _SEEN.clear()
