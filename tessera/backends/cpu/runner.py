"""Runs a CPU-compiled kernel: MLIR ExecutionEngine over the packed `_mlir__mlir_ciface_<name>_range` entry (the
argument packing, the split over threads and fault reporting are tessera.runtime.cpu_launch's, shared with
saved objects)."""
from __future__ import annotations

from ...ir.locations import source_position
from ...runtime.cpu_launch import ENTRY, PackedEntryLauncher, range_entry


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
        # the CFUNCTYPE engine.invoke would make on every call, made once: ctypes releases the GIL while it
        # runs, so the chunks of a launch run at once (self.engine keeps the code alive)
        address = self.engine.raw_lookup(range_entry(name))
        if not address:
            raise RuntimeError(f"the compiled module has no entry {name}_range")
        self.fn = ENTRY(address)
