"""`ts.optimizations.<Name>()`: seed 002's optimisation objects, each wrapping a registered pass.

`opt.apply(module, config)` returns the module with the pass added to what `ts.compile(module, config=...)`
runs (a view sharing the module's parameters; the module itself is unchanged). Graph passes join the graph
pipeline; kernel passes (TMA, WGMMA) are part of the sm_90a kernel pipeline, so applying one checks that the
config targets sm_90a. An optimisation tessera has no pass for is refused with a TesseraError naming it,
never accepted and ignored."""
from __future__ import annotations

import copy

from ..errors import CompilationError, located


class Optimization:
    pass_name: str = ""
    kind = "graph"          # "graph": joins the graph pipeline; "sm_90a": part of that target's kernel pipeline

    def options(self) -> str:
        return ""

    def pipeline_element(self) -> str:
        return self.pass_name + self.options()

    def apply(self, module, config=None):
        from ..nn.module import Module
        if not isinstance(module, Module):
            raise located(CompilationError, f"{type(self).__name__}.apply takes a ts.Module, got {type(module).__name__}")
        if self.kind == "sm_90a":
            target = getattr(config, "target_architecture", None)
            if target != "sm_90a":
                raise located(CompilationError, f"ts.optimizations.{type(self).__name__} ({self.pass_name}) is a Hopper (sm_90a) "
                                   f"kernel pass; the config targets {target!r}")
        view = copy.copy(module)   # shares parameters and submodules; only the pass list differs
        passes = tuple(getattr(module, "_tessera_optimizations", ())) + (self,)
        object.__setattr__(view, "_tessera_optimizations", passes)
        return view

    def __repr__(self):
        return f"ts.optimizations.{type(self).__name__}({self.options()[1:-1] if self.options() else ''})"


class FuseDeltaConnections(Optimization):
    """A sum of gated deltas into one target → one fused kernel (tessera-fuse-delta-connections)."""
    pass_name = "tessera-fuse-delta-connections"


class OptimizeDeltaMemoryAccess(FuseDeltaConnections):
    """The delta memory traffic: the fused delta kernel reads the target once and each source once
    (tessera-fuse-delta-connections; the same pass as FuseDeltaConnections)."""


class PruneSparseDeltas(Optimization):
    """Drop delta connections whose constant weight is below `threshold`; mark runtime-weighted ones for
    the mask-skipping kernel (tessera-prune-sparse-deltas)."""
    pass_name = "tessera-prune-sparse-deltas"

    def __init__(self, threshold=0.01):
        if not isinstance(threshold, (int, float)) or isinstance(threshold, bool) or threshold < 0:
            raise located(CompilationError, f"PruneSparseDeltas: threshold must be a number >= 0, got {threshold!r}")
        self.threshold = float(threshold)

    def options(self):
        return f"{{threshold={self.threshold}}}"


class OptimizeGatingNetworks(Optimization):
    """gemm → scale → sigmoid → multiply as one GEMM with a fused epilogue (tessera-optimize-gating-networks)."""
    pass_name = "tessera-optimize-gating-networks"


class UseTMAForDeltas(Optimization):
    """Tile loads as TMA bulk copies on sm_90a (tessera-use-tma, in the sm_90a kernel pipeline)."""
    pass_name, kind = "tessera-use-tma", "sm_90a"


class UseWGMMAForGating(Optimization):
    """K loops as warpgroup MMA on sm_90a (tessera-use-wgmma, in the sm_90a kernel pipeline)."""
    pass_name, kind = "tessera-use-wgmma", "sm_90a"


class _Unavailable(Optimization):
    why = ""

    def apply(self, module, config=None):
        raise located(CompilationError, f"ts.optimizations.{type(self).__name__}: {self.why}")


class EnableClusterMode(_Unavailable):
    why = ("thread-block clusters are a @ts.kernel launch option (num_ctas=); the graph compiler does not launch "
           "its kernels in clusters yet, so this optimisation has no pass to run")


class OptimizeAttentionDeltas(_Unavailable):
    why = ("attention-based delta selection has no dedicated pass (the model's delta attention compiles as "
           "batched gemms and a fused softmax)")


def graph_passes(module) -> list:
    """The pipeline elements of the graph optimisations applied to `module` (in order, without repeats)."""
    out = []
    for opt in getattr(module, "_tessera_optimizations", ()):
        if opt.kind == "graph" and opt.pipeline_element() not in out:
            out.append(opt.pipeline_element())
    return out


__all__ = ["Optimization", "FuseDeltaConnections", "OptimizeDeltaMemoryAccess", "PruneSparseDeltas",
           "OptimizeGatingNetworks", "UseTMAForDeltas", "UseWGMMAForGating", "EnableClusterMode",
           "OptimizeAttentionDeltas"]
