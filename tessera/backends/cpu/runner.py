"""Runs a CPU-compiled kernel: MLIR ExecutionEngine over the packed `_mlir_<name>_grid` entry (the
argument packing and fault reporting are tessera.runtime.cpu_launch's, shared with saved objects)."""
from __future__ import annotations

from ...ir.locations import source_position
from ...runtime.cpu_launch import PackedEntryLauncher


def fault_sites(module):
    """[(description, file, line, col)] per fault code (tessera-lower-tile-to-cpu's `tessera.int_faults`)."""
    from mlir import ir
    attrs = module.operation.attributes
    if "tessera.int_faults" not in attrs:
        return []
    out = []
    for site in ir.ArrayAttr(attrs["tessera.int_faults"]):
        loc, what = (ir.StringAttr(x).value for x in ir.ArrayAttr(site))
        out.append((what, *source_position(loc)))
    return out


class CpuRunner(PackedEntryLauncher):
    def __init__(self, module, name: str, arg_abi: list[dict]):
        from mlir import execution_engine
        super().__init__(name, arg_abi, fault_sites(module))
        self.engine = execution_engine.ExecutionEngine(module, opt_level=2)
        self.entry = name + "_grid"
        self.engine.lookup(self.entry)  # fail now, not at the first launch

    def _invoke(self, ptrs):
        self.engine.invoke(self.entry, *ptrs)
