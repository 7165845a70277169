"""tessera's PTX emulator: the PTX the NVIDIA backend emits, run on the CPU with NumPy, with
sanitizer checks a GPU run alone would not give (DESIGN §11, docs/emulator.md). MLIR-free.

    ck = ts.compile(kernel, *numpy_args, target="sm_80")
    report = ck.emulate(grid, *numpy_args)          # outputs land in the arrays; findings raise SanitizerError

Modules: ptx (parser), machine (lanes, scheduler), memory (global / shared, checks, counters),
ops/ (semantics by family), launch (the launch ABI), report (findings, counters)."""
from __future__ import annotations

from .launch import EmulatorLauncher, emulate, run_ptx  # noqa: F401
from .ptx import parse_ptx  # noqa: F401
from .report import EmulationReport, Finding  # noqa: F401
