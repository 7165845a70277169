"""Seed 002's `GDNProductionCompiler`: one compiled variant per (architecture × batch size).

    compiler = GDNProductionCompiler(target_architectures=["cpu", "sm_80", "sm_90"])
    variants = compiler.compile_gdn_model(model, {"input_ids": ["batch", 128]}, batch_sizes=[1, 4, 8])
    # {"cpu_batch_1": CompiledModule, ..., "sm_90a_batch_8": CompiledModule}

Where it differs from the seed (docs/production.md): "tensorrt" is not among the export formats (tessera has
no TensorRT exporter; ts.compile refuses it), OptimizeAttentionDeltas and EnableClusterMode are left out
(tessera has no pass for them; applying them raises), an fp8 variant exports no ONNX (no fp8 Gather / MatMul
in ONNX), "sm_90" is sm_90a, and "cpu" gets an f32 policy (the
CPU backend computes reduced precision by emulation, slower than f32). A GPU variant compiles its kernels'
cubins here with ptxas; it runs on that GPU, or in the PTX emulator (TESSERA_BACKEND=emu)."""
from __future__ import annotations

from .. import dtypes as dt
from ..errors import CompilationError, located
from . import optimizations as opts
from .numerics import NumericsPolicy

_ARCHS = ("cpu", "sm_80", "sm_90", "sm_90a")


class GDNProductionCompiler:
    def __init__(self, target_architectures=("sm_80", "sm_90"), export_formats=("onnx",),
                 optimization_level="aggressive"):
        archs = [a for a in target_architectures]
        bad = [a for a in archs if a not in _ARCHS]
        if bad or not archs:
            raise located(CompilationError, f"GDNProductionCompiler: target_architectures must be from "
                          f"{', '.join(_ARCHS)}, got {archs!r}")
        self.target_architectures = ["sm_90a" if a == "sm_90" else a for a in archs]
        self.export_formats = list(export_formats)
        self.optimization_level = optimization_level

    def compile_gdn_model(self, model, input_shapes, batch_sizes=(1, 8, 16, 32)):
        """{f"{arch}_batch_{b}": ts.CompiledModule} for every architecture and batch size."""
        variants = {}
        for batch_size in batch_sizes:
            for arch in self.target_architectures:
                config = self.config_for(arch, batch_size)
                variants[f"{arch}_batch_{batch_size}"] = self.compile_variant(model, input_shapes, config)
        return variants

    def config_for(self, arch, batch_size):
        from ..frontend.function_options import CompilationConfig
        return CompilationConfig(target_architecture=arch, batch_size=batch_size,
                                 optimization_level=self.optimization_level,
                                 numerics_policy=self.get_numerics_policy(arch), memory_optimization=True,
                                 delta_fusion=True)

    def compile_variant(self, model, input_shapes, config):
        import tessera as ts
        formats = list(self.export_formats)
        if config.target_architecture != "cpu" and "cubin" not in formats:
            formats.append("cubin")
        policy = config.numerics_policy
        if policy is not None and "fp8" in " ".join(str(v) for v in policy.to_dict().values()):
            # ONNX has no fp8 Gather / MatMul: the Hopper variants export cubins only (docs/production.md)
            formats = [f for f in formats if f != "onnx"]
        return ts.compile(self.apply_gdn_optimizations(model, config), input_shapes=input_shapes, config=config,
                          export_formats=formats)

    def gdn_optimizations(self, config):
        chosen = [opts.FuseDeltaConnections(), opts.OptimizeGatingNetworks(), opts.OptimizeDeltaMemoryAccess(),
                  opts.PruneSparseDeltas(threshold=0.01)]
        if config.target_architecture == "sm_90a":
            chosen += [opts.UseTMAForDeltas(), opts.UseWGMMAForGating()]
        return chosen

    def apply_gdn_optimizations(self, model, config):
        for optimization in self.gdn_optimizations(config):
            model = optimization.apply(model, config)
        return model

    def get_numerics_policy(self, architecture):
        """The seed's policies: fp8 weights and activations with bf16 gating / deltas on Hopper, bf16 with f32
        gating on Ampere; f32 on the CPU."""
        if architecture == "cpu":
            return NumericsPolicy()
        if architecture in ("sm_90", "sm_90a"):
            return NumericsPolicy(activation_dtype=dt.fp8_e4m3, weight_dtype=dt.fp8_e4m3, accumulation_dtype=dt.f32,
                                  gating_dtype=dt.bf16, delta_dtype=dt.bf16, gradient_scaling=True, loss_scaling=2 ** 15)
        return NumericsPolicy(activation_dtype=dt.bf16, weight_dtype=dt.bf16, accumulation_dtype=dt.f32,
                              gating_dtype=dt.f32, delta_dtype=dt.bf16, gradient_scaling=True, loss_scaling=2 ** 10)
