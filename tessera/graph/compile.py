"""ts.compile for @ts.function: trace, run the graph pipeline, (later) lower to tile kernels."""
from __future__ import annotations

import sys

import numpy as np

from .. import knobs
from ..errors import TesseraError
from ..runtime import torch_interop

# The default graph pipeline of a call and of ts.compile (DESIGN §5)
GRAPH_PIPELINE = 'canonicalize,tessera-prune-sparse-deltas{threshold=0.01},tessera-fuse-delta-connections,canonicalize,cse,tessera-erase-dead-graph-ops'


class CompiledFunction:
    """A traced and optimised @ts.function. `.asm["ts"]` is the graph as written, `.asm["ts.opt"]`
    after the graph pipeline."""

    def __init__(self, fn, traced, asm, target, plan=None, params=None):
        self.fn, self.traced, self.asm, self.target = fn, traced, asm, target
        self.plan, self.params = plan, params
        self.arg_spec = None   # the parameters as compiled (compile_function records them; saving needs them)
        self.metadata = {"target": target, "kernels": plan.kernel_count if plan else None}

    def saved_activation_bytes(self, checkpoints=True):
        """Bytes of forward values a gradient graph keeps for its backward pass (its graph as traced):
        with the function's checkpoints (regions recomputed in the backward pass), or as it would be
        without them. 0 for a graph with no backward pass."""
        saved = getattr(self.traced, "saved_bytes", (0, 0))
        return saved[0] if checkpoints else saved[1]

    def profile(self, *args, **kwargs):
        """Run once per kernel with timing: [(label, kernel, seconds, bytes moved)] (for the demo and benchmarks)."""
        rows = []
        self(*args, _profile=rows, **kwargs)
        return rows

    def __call__(self, *args, _profile=None, **kwargs):
        from ..frontend.function import Signature
        from .execute import run
        if self.plan is None:
            from ..frontend.kernel import _reraise
            _reraise(self.plan_error)
        (args, kwargs), torch_in = torch_interop.unwrap((args, kwargs))   # CPU tensors as NumPy views
        sig = Signature(self.fn.fn, args, kwargs, self.params)
        arrays = sig.runtime_arrays()
        xp = np
        if arrays and not isinstance(arrays[0], np.ndarray):
            import cupy as xp  # noqa: F811 - GPU arrays: the same plan runs through CuPy
        try:
            outs = run(self.plan, arrays, xp, _profile)
        except TesseraError as e:
            from ..frontend.kernel import _reraise
            _reraise(e)
        for i in self.traced.scalar_results:   # 0-d results
            outs[i] = outs[i].reshape(())
        if torch_in:  # results come back as the caller's kind of array
            outs = torch_interop.wrap(outs)
        pack = getattr(self.traced, "pack", None)   # a gradient's (value, grads) structure
        if pack is not None:
            return pack(outs)
        return outs[0] if self.traced.result_layout == "single" else tuple(outs)

    def save(self, directory, target=None):
        """Write this function's plan, constants and compiled kernels (shared objects for "cpu", cubins for
        sm_80 / sm_90a) to `directory`, for `target` (default: its own); `tessera.runtime.load_plan(directory)`
        runs it in a process without MLIR. See docs/saved_plans.md."""
        from .save_plan import save_plan
        try:
            return save_plan(self, directory, target)
        except TesseraError as e:
            from ..frontend.kernel import _reraise
            _reraise(e)

    def __repr__(self):
        return f"<CompiledFunction {self.fn.__name__} target={self.target} stages={list(self.asm)}>"


def compile_function(fn, args, kwargs, target="cpu", params=None, pipeline=None):
    from mlir import ir
    from ..compiler import run_pipeline
    try:
        traced = fn.trace(args, kwargs, params)
        asm = {"ts": traced.asm}
        with traced.tracer.ctx, ir.Location.unknown():
            module = ir.Module.parse(traced.asm)
            config = getattr(fn, "config", None)
            run_pipeline(module, pipeline or (config.pipeline() if config is not None else GRAPH_PIPELINE))
            asm["ts.opt"] = module.operation.get_asm(enable_debug_info=True)
            remarks = [ir.StringAttr(a).value for a in ir.ArrayAttr(module.operation.attributes["tessera.remarks"])] \
                if "tessera.remarks" in module.operation.attributes else []
            from .plan import build_plan
            try:
                plan, plan_error = build_plan(module), None
                run_pipeline(module, "tessera-lower-graph-to-tile")
                asm["tile"] = module.operation.get_asm(enable_debug_info=True)
            except TesseraError as e:  # the graph is still inspectable; running it reports this
                plan, plan_error = None, e
        if plan is not None and config is not None:
            plan.keep_intermediates = not config.enable_memory_optimization
        ck = CompiledFunction(fn, traced, asm, target, plan, params)
        ck.plan_error = plan_error
        from ..frontend.function import Signature
        from .save_plan import describe_arguments
        ck.arg_spec = describe_arguments(Signature(fn.fn, args, kwargs, params))   # what a saved plan checks
        if target != "cpu" and plan is not None:  # every group's kernel for the GPU target (cubins)
            import tessera as ts
            ck.kernels = [ts.compile(st.kernel, *st.examples, target=target, **st.launch_config(target)[1])
                          for st in plan.steps if st.kernel is not None]   # (not the host steps)
            ck.asm["cubin"] = [k.asm["cubin"] for k in ck.kernels]
        ck.metadata["remarks"] = remarks
        if "remarks" in knobs.log():
            for r in remarks:
                print(f"[tessera] remark: {r}", file=sys.stderr)
        return ck
    except TesseraError as e:
        from ..frontend.kernel import _reraise
        _reraise(e)
