"""Typed pass options: a pass module declares `OPTIONS = {name: Option(...)}` and the registry parses
and range-checks `{name=value ...}` before the pass runs, so a bad value is a clear pipeline error
naming the pass, the option, the value and what is accepted (never a ValueError inside the pass)."""
from __future__ import annotations

import math
import re


class Option:
    """One option: `kind` is int, float, bool or str; ints and floats have an inclusive range, strs a
    set of choices (with aliases, e.g. sm_90 for sm_90a)."""

    def __init__(self, kind, doc, *, lo=None, hi=None, choices=None, aliases=None, pattern=None):
        self.kind, self.doc, self.lo, self.hi = kind, doc, lo, hi
        self.choices, self.aliases = tuple(choices or ()), dict(aliases or {})
        self.pattern = pattern  # (regex, description) a str must match instead of a choice

    def accepted(self) -> str:
        if self.kind is bool:
            return "0, 1, true or false"
        if self.kind is str:
            return self.pattern[1] if self.pattern else "one of " + ", ".join(self.choices + tuple(self.aliases))
        what = "an integer" if self.kind is int else "a finite number"
        if self.lo is not None and self.hi is not None:
            return f"{what} from {self.lo} to {self.hi}"
        if self.lo is not None:
            return f"{what} >= {self.lo}"
        return what

    def parse(self, text):
        """The typed value of `text`; ValueError when it is not accepted."""
        text = str(text).strip()
        if self.kind is bool:
            if text.lower() in ("1", "true"):
                return True
            if text.lower() in ("0", "false"):
                return False
            raise ValueError
        if self.kind is str:
            text = self.aliases.get(text, text)
            if not (re.fullmatch(self.pattern[0], text) if self.pattern else text in self.choices):
                raise ValueError
            return text
        value = int(text, 10) if self.kind is int else float(text)
        if self.kind is float and not math.isfinite(value):
            raise ValueError
        if (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
            raise ValueError
        return value


ARCH = Option(str, "the GPU target", choices=("sm_80", "sm_90a"), aliases={"sm_90": "sm_90a"})
NUM_WARPS = Option(int, "warps per program (a CTA of 32 * num_warps threads)", lo=1, hi=32)
NUM_STAGES = Option(int, "software-pipeline depth of the K loops", lo=1, hi=16)
FLAG = Option(bool, "a switch")

# Options of upstream passes that abort inside MLIR or LLVM on a bad value (an assertion, not an
# error): checked by the registry before MLIR parses them. Other upstream options are MLIR's to check.
NVPTX_CHIPS = ("sm_50", "sm_52", "sm_53", "sm_60", "sm_61", "sm_62", "sm_70", "sm_72", "sm_75", "sm_80",
               "sm_86", "sm_87", "sm_89", "sm_90", "sm_90a", "sm_100", "sm_100a", "sm_101", "sm_101a",
               "sm_120", "sm_120a")
UPSTREAM = {
    "nvvm-attach-target": {
        "chip": Option(str, "the NVPTX processor", choices=NVPTX_CHIPS),
        "features": Option(str, "PTX features", pattern=(r"[+-][\w.]+(,[+-][\w.]+)*",
                                                         "comma-separated features each starting with + or -, "
                                                         "e.g. +ptx80")),
        "O": Option(int, "the LLVM optimisation level", lo=0, hi=3),
        "triple": Option(str, "the target triple", choices=("nvptx64-nvidia-cuda", "nvptx-nvidia-cuda")),
    },
    "gpu-module-to-binary": {
        "format": Option(str, "the output format", choices=("offloading", "assembly", "binary", "fatbinary",
                                                            "llvm", "isa", "bin", "fatbin")),
    },
}
