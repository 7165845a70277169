"""Ahead-of-time object code for CPU kernels: the LLVM-dialect module the ExecutionEngine JITs (the
kernel's `asm["llvm"]`) compiled by the same engine, position-independent, dumped as an object file and
linked by the system C compiler into a shared object that tessera.runtime.cpu_object loads with ctypes,
without MLIR.

What the object needs from outside: libc (malloc, free) and libm (expf, tanhf, ... from
convert-math-to-libm). `__truncsfbf2`, which LLVM calls for bf16 on hosts without AVX512-BF16, is defined in
the module itself (tessera-cpu-bf16-runtime). The link uses `-z defs`, so a symbol nothing provides fails
here, at save time, naming it, and not when the plan is loaded elsewhere. `-Bsymbolic` binds the kernel's
calls to its own functions, so two kernels of one name (other specialisations) in one process stay apart."""
from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import tempfile

from ... import knobs
from ...errors import BackendUnavailable, TesseraError
from ...runtime.artifact import MANIFEST
from ...runtime.cpu_launch import range_entry
from ...runtime.cpu_object import host_isa

FORMAT = 1


def c_compiler() -> str:
    """The C compiler that links shared objects: TESSERA_CC, else CC, else cc / gcc / clang on PATH."""
    explicit = knobs.c_compiler()
    if explicit:
        found = shutil.which(explicit)
        if found is None:
            raise BackendUnavailable(f"the C compiler '{explicit}' (TESSERA_CC / CC) was not found")
        return found
    for name in ("cc", "gcc", "clang"):
        found = shutil.which(name)
        if found:
            return found
    raise BackendUnavailable("saving a CPU kernel as object code needs a C compiler to link the shared object, "
                             "and none of cc, gcc, clang is on PATH: install one (e.g. apt-get install gcc) or "
                             "set TESSERA_CC to its path")


def write_object_file(llvm_asm: str, name: str, path: str) -> list:
    """Compile a kernel's LLVM-dialect module (its `asm["llvm"]`) to a PIC object file at `path`;
    returns the fault sites of its integer-fault flag [(description, file, line, col)]."""
    from mlir import execution_engine, ir
    from ...ir import new_context
    from .runner import fault_sites
    with new_context(), ir.Location.unknown():
        module = ir.Module.parse(llvm_asm)
        faults = fault_sites(module)
        engine = execution_engine.ExecutionEngine(module, opt_level=2, enable_pic=True)
        engine.lookup(name + "_range")   # code generation happens on the first lookup
        engine.dump_to_object_file(path)
    return faults


def link_shared_object(obj: str, out: str):
    cc = c_compiler()
    cmd = [cc, "-shared", "-Wl,-Bsymbolic", "-Wl,-z,defs", "-o", out, obj, "-lm"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise TesseraError(f"linking the kernel object failed ({' '.join(cmd)}):\n{r.stderr.strip()}")


def _linked_object(ck, out) -> list:
    """Compile and link `ck` into the shared object `out`; returns its fault sites. The result is kept in the
    compile cache's objects/ folder by the hash of the LLVM module, compiler and host ISA (a deployment package
    holds the same kernels in every batch variant: each is compiled and linked once), written atomically so
    concurrent processes never read a partial file."""
    import hashlib
    key = hashlib.sha256("\0".join([ck.asm["llvm"], ck.name, c_compiler(), " ".join(host_isa())]).encode()).hexdigest()
    cached = knobs.cache_dir() / "objects" / key[:32] if knobs.cache_enabled() else None
    if cached is not None and (cached / "kernel.so").is_file() and (cached / "faults.json").is_file():
        try:
            faults = [tuple(f) for f in json.loads((cached / "faults.json").read_text())]
            shutil.copyfile(cached / "kernel.so", out)
            return faults
        except (OSError, ValueError):   # a damaged entry: rebuild it below
            pass
    with tempfile.TemporaryDirectory(prefix="tessera-aot-") as tmp:
        obj = os.path.join(tmp, f"{ck.name}.o")
        faults = write_object_file(ck.asm["llvm"], ck.name, obj)
        linked = os.path.join(tmp, "kernel.so")
        link_shared_object(obj, linked)
        shutil.copyfile(linked, out)
        if cached is not None:
            try:
                cached.mkdir(parents=True, exist_ok=True)
                for name, src in (("kernel.so", linked), ("faults.json", None)):
                    part = cached / f".{name}.{os.getpid()}"
                    if src is None:
                        part.write_text(json.dumps([list(f) for f in faults]))
                    else:
                        shutil.copyfile(src, part)
                    os.replace(part, cached / name)
            except OSError:   # a read-only or full cache: the object is still saved
                pass
    return faults


def save_cpu_artifact(ck, directory) -> str:
    """Write `ck` (a kernel compiled for target "cpu") as `<directory>/<name>.so` + manifest.json;
    tessera.runtime.load(directory) runs it without MLIR."""
    if ck.target != "cpu" or "llvm" not in ck.asm:
        raise TesseraError(f"save_cpu_artifact needs a kernel compiled for 'cpu' (this one is for '{ck.target}')")
    os.makedirs(directory, exist_ok=True)
    so = f"{ck.name}.so"
    faults = _linked_object(ck, os.path.join(directory, so))
    with open(os.path.join(directory, f"{ck.name}.llvm"), "w") as f:   # what the object was compiled from
        f.write(ck.asm["llvm"])
    meta = {k: v for k, v in ck.metadata.items() if isinstance(v, (str, int, float, bool, list, dict, type(None)))}
    # `entry` stays the whole-grid entry that a tessera from before the split over threads calls (with no range
    # in its pointer array); `range_entry` is the one this tessera calls
    manifest = {"format": FORMAT, "kernel": ck.name, "target": "cpu", "object": so,
                "entry": f"_mlir__mlir_ciface_{ck.name}_grid", "range_entry": f"_mlir_{range_entry(ck.name)}",
                "metadata": json.loads(json.dumps(meta, default=repr)), "faults": [list(f) for f in faults],
                "host": {"machine": platform.machine(), "isa": host_isa()}}
    with open(os.path.join(directory, MANIFEST), "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
    return directory
