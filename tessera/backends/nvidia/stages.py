"""The NVIDIA stage table and its resource checks."""
from __future__ import annotations

import re

from mlir import ir
from mlir.dialects import gpu

from ...errors import OutOfResources
from . import PIPELINE_GPU, PIPELINE_GPU_SM90, PIPELINE_LLVM, TARGETS
from ...runtime.persistent import HIDDEN
from .ptxas import assemble
from .tile_loop import PERSISTENT


def stages(target_name: str, num_warps: int, num_stages: int = 3, warp_specialize: bool = False,
           persistent: bool = False):
    t = TARGETS[target_name]
    return [
        ("gpu", lambda st: _gpu_stage(st, t, num_warps, num_stages, warp_specialize, persistent)),
        ("llvm", PIPELINE_LLVM.format(chip=t.chip)),
        ("ptx", _ptx_stage),
        ("cubin", lambda st: _cubin_stage(st, t)),
    ]


def _gpu_stage(st, t, num_warps, num_stages, warp_specialize=False, persistent=False):
    pipeline = PIPELINE_GPU_SM90 if t.name == "sm_90a" else PIPELINE_GPU
    st.run_pipeline(pipeline.format(arch=t.name, num_warps=num_warps, num_stages=num_stages,
                                    ws=int(bool(warp_specialize)), persistent=int(bool(persistent))))
    fn = _kernel_func(st.module)
    if PERSISTENT in fn.attributes:   # the caller's grid: trailing parameters every launcher fills
        st.meta["persistent"] = True
        st.meta["args"] = st.meta["args"] + HIDDEN
    st.meta["tma"] = [[ir.IntegerAttr(x).value for x in ir.ArrayAttr(e)]
                      for e in ir.ArrayAttr(fn.attributes["tessera.tma"])] if "tessera.tma" in fn.attributes else []
    shared = ir.IntegerAttr(fn.attributes["tessera.shared_bytes"]).value
    st.meta["shared_bytes"] = shared
    st.meta["num_warps"] = num_warps
    if shared > t.smem_per_block:
        _smem_error(fn, shared, t)
    return str(st.module)


def _kernel_func(module):
    for op in module.body.operations:
        if op.operation.name == "gpu.module":
            for f in op.regions[0].blocks[0].operations:
                if f.operation.name == "gpu.func":
                    return f.operation
    raise RuntimeError("no gpu.func after tessera-lower-tile-to-gpu")


_LOC = re.compile(r'loc\("(.+)":(\d+):(\d+)\)')


def _smem_error(fn, shared, t):
    allocs = [(ir.IntegerAttr(ir.ArrayAttr(a)[0]).value, ir.StringAttr(ir.ArrayAttr(a)[1]).value)
              for a in ir.ArrayAttr(fn.attributes["tessera.smem_allocs"])]
    scratch = (0, None)
    if "tessera.smem_scratch" in fn.attributes:
        a = ir.ArrayAttr(fn.attributes["tessera.smem_scratch"])
        scratch = (ir.IntegerAttr(a[0]).value, ir.StringAttr(a[1]).value)
    over = shared - t.smem_per_block
    biggest = max((s for s, _ in allocs), default=0)
    if sum(s for s, _ in allocs) <= t.smem_per_block and scratch[0]:
        # the kernel's own buffers fit: what overflows is the area through which a reduction, broadcast,
        # transpose or mma exchanges a whole tile between threads
        where = scratch[1]
        hint = (f"the tile exchanged through shared memory here (a reduction, broadcast, transpose or mma "
                f"of the whole tile) needs {scratch[0]} bytes: use smaller tiles (block sizes), at least "
                f"{over} bytes less")
    else:
        running, where = 0, None
        for size, loc in allocs:
            running += size
            if running > t.smem_per_block and where is None:
                where = loc
        where = where or allocs[-1][1]
        hint = (f"shrink the shared buffers by at least {over} bytes, e.g. halve the block size of the "
                f"largest buffer ({biggest} bytes)")
    m = _LOC.search(where or "")
    raise OutOfResources(
        f"shared memory: the kernel needs {shared} bytes, the {t.name} budget is {t.smem_per_block} bytes; {hint}",
        m.group(1) if m else None, int(m.group(2)) if m else None, int(m.group(3)) if m else None,
        required=shared, budget=t.smem_per_block, resource="shared memory", suggestion=hint)


def _ptx_stage(st):
    st.run_pipeline("gpu-module-to-binary{format=isa}")
    for op in st.module.body.operations:
        if op.operation.name == "gpu.binary":
            return gpu.ObjectAttr(ir.ArrayAttr(op.attributes["objects"])[0]).object.decode()
    raise RuntimeError("gpu-module-to-binary produced no gpu.binary")


def _cubin_stage(st, t):
    cubin, info = assemble(st.asm["ptx"], t.name)
    st.meta.update({k: v for k, v in info.items() if k != "ptxas_log"})
    total = st.meta.get("shared_bytes", 0) + info["static_smem"]
    if total > t.smem_per_block:  # static shared memory (mbarriers, alignment) comes on top
        over = total - t.smem_per_block
        raise OutOfResources(
            f"shared memory: {st.meta.get('shared_bytes', 0)} dynamic + {info['static_smem']} static bytes exceed "
            f"the {t.name} budget of {t.smem_per_block} bytes; shrink the shared buffers (or num_stages) by "
            f"at least {over} bytes", *getattr(st, "where", (None, None)), None,
            required=total, budget=t.smem_per_block, resource="shared memory", suggestion=f"{over} bytes less")
    regs = info["registers"] or 0
    threads = st.meta["num_warps"] * 32
    if regs * threads > t.regs_per_block:
        fits = max(1, t.regs_per_block // (regs * 32))
        raise OutOfResources(
            f"registers: {regs} per thread × {threads} threads exceeds the {t.regs_per_block}-register budget of a "
            f"{t.name} CTA; use num_warps={1 << (fits.bit_length() - 1)} or smaller tiles",
            *getattr(st, "where", (None, None)), None, required=regs * threads, budget=t.regs_per_block, resource="registers",
            suggestion=f"num_warps={1 << (fits.bit_length() - 1)}")
    return cubin
