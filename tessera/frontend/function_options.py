"""Options of `@ts.function(...)` / `@ts.jit(...)`: each is honoured or rejected with a located error,
never ignored.

- `input_shapes={"x": ["B", "S"], ...}`: the shapes the named array arguments must have at every call, as
  dim names (consistent across arguments, like a kernel's named dims) and ints; a mismatch is a
  `ts.ShapeError` at the call.
- `compilation_config=ts.CompilationConfig(...)`: the graph pipeline (`optimization_level` "none" runs no
  graph optimisation, "default" and "aggressive" the default pipeline; `enable_delta_fusion`,
  `enable_pruning` and `prune_threshold` switch and tune its passes).
"""
from __future__ import annotations

import inspect

from ..errors import CompilationError, ShapeError

_LEVELS = ("none", "default", "aggressive")
_TARGETS = ("auto", "cpu", "sm_80", "sm_90", "sm_90a")
# Options the seed passes that name what tessera always does: True is accepted, False is refused (they
# cannot be switched off), so neither value is silently ignored.
_ALWAYS_ON = {
    "enable_kernel_fusion": "consecutive elementwise ops of one shape always run as one fused kernel",
    "enable_attention_optimization": "attention always runs as batched gemms with a fused softmax kernel",
}
_ALIASES = {"delta_fusion": "enable_delta_fusion", "memory_optimization": "enable_memory_optimization"}


class CompilationConfig:
    """How a graph is compiled (`@ts.jit(compilation_config=...)`, `ts.compile(module, config=...)`).

    - optimization_level: "none" runs no graph optimisation, "default" / "aggressive" the default pipeline.
    - enable_delta_fusion (alias delta_fusion), enable_pruning, prune_threshold: the graph passes.
    - target_architecture: "auto" (the best target present: a GPU's arch, else "cpu"), "cpu", "sm_80",
      "sm_90a" ("sm_90" means sm_90a). batch_size: the batch a module variant is compiled for.
    - enable_memory_optimization (alias memory_optimization, default True): intermediates are freed after
      their last reader; False keeps every intermediate alive until the call returns (for inspection).
    - max_memory_usage: a fraction (0, 1] of the target's memory that the weights plus the peak of live
      intermediates may use; a larger variant is refused when it is compiled (OutOfResources).
    - numerics_policy=ts.NumericsPolicy(...): dtypes per role; enable_mixed_precision=True with
      activation_dtype / weight_dtype / accumulation_dtype is shorthand for one.
    - enable_kernel_fusion, enable_attention_optimization: always on (True accepted, False refused).
    """

    def __init__(self, optimization_level="default", enable_delta_fusion=True, enable_pruning=True,
                 prune_threshold=0.01, target_architecture="auto", batch_size=None, numerics_policy=None,
                 enable_memory_optimization=True, max_memory_usage=None, enable_mixed_precision=False,
                 activation_dtype=None, weight_dtype=None, accumulation_dtype=None, **others):
        from .function import user_frame

        def fail(msg):
            raise CompilationError(f"ts.CompilationConfig: {msg}", *user_frame())
        for alias, name in _ALIASES.items():
            if alias in others:
                value = others.pop(alias)
                if name == "enable_delta_fusion":
                    enable_delta_fusion = value
                else:
                    enable_memory_optimization = value
        for name in list(others):
            if name in _ALWAYS_ON:
                if not others.pop(name):
                    fail(f"{name}=False is not supported: {_ALWAYS_ON[name]}")
        if others:
            fail(f"{', '.join(sorted(others))} not supported (known: optimization_level, enable_delta_fusion, "
                 "enable_pruning, prune_threshold, target_architecture, batch_size, numerics_policy, "
                 "enable_memory_optimization, max_memory_usage, enable_mixed_precision, activation_dtype, "
                 f"weight_dtype, accumulation_dtype, {', '.join(_ALWAYS_ON)})")
        if optimization_level not in _LEVELS:
            fail(f"optimization_level must be one of {', '.join(_LEVELS)}, got {optimization_level!r}")
        if not isinstance(prune_threshold, (int, float)) or prune_threshold < 0:
            fail(f"prune_threshold must be a number >= 0, got {prune_threshold!r}")
        if target_architecture not in _TARGETS:
            fail(f"target_architecture must be one of {', '.join(_TARGETS)}, got {target_architecture!r}")
        if batch_size is not None and (not isinstance(batch_size, int) or isinstance(batch_size, bool)
                                       or batch_size <= 0):
            fail(f"batch_size must be a positive int, got {batch_size!r}")
        if max_memory_usage is not None and not (isinstance(max_memory_usage, (int, float))
                                                 and 0 < max_memory_usage <= 1):
            fail(f"max_memory_usage must be a fraction in (0, 1], got {max_memory_usage!r}")
        from ..production.numerics import NumericsPolicy
        dtypes = {"activation_dtype": activation_dtype, "weight_dtype": weight_dtype,
                  "accumulation_dtype": accumulation_dtype}
        given = {k: v for k, v in dtypes.items() if v is not None}
        if given and not enable_mixed_precision:
            fail(f"{', '.join(given)} need enable_mixed_precision=True (or pass numerics_policy=)")
        if enable_mixed_precision:
            if numerics_policy is not None:
                fail("give either numerics_policy or enable_mixed_precision with dtypes, not both")
            numerics_policy = NumericsPolicy(**given) if given else NumericsPolicy.mixed_bf16()
        if numerics_policy is not None and not isinstance(numerics_policy, NumericsPolicy):
            fail(f"numerics_policy must be a ts.NumericsPolicy, got {type(numerics_policy).__name__}")
        self.optimization_level = optimization_level
        self.enable_delta_fusion = bool(enable_delta_fusion)
        self.enable_pruning = bool(enable_pruning)
        self.prune_threshold = float(prune_threshold)
        self.target_architecture = "sm_90a" if target_architecture == "sm_90" else target_architecture
        self.batch_size = batch_size
        self.numerics_policy = numerics_policy
        self.enable_memory_optimization = bool(enable_memory_optimization)
        self.max_memory_usage = None if max_memory_usage is None else float(max_memory_usage)

    def pipeline(self) -> str:
        """The graph pipeline this configuration runs."""
        if self.optimization_level == "none":
            return "canonicalize"
        passes = ["canonicalize"]
        if self.enable_pruning:
            passes.append(f"tessera-prune-sparse-deltas{{threshold={self.prune_threshold}}}")
        if self.enable_delta_fusion:
            passes.append("tessera-fuse-delta-connections")
        return ",".join(passes + ["canonicalize", "cse", "tessera-erase-dead-graph-ops"])

    def replace(self, **changes):
        """A copy with some fields changed (validated like the constructor)."""
        fields = {k: getattr(self, k) for k in ("optimization_level", "enable_delta_fusion", "enable_pruning",
                                                "prune_threshold", "target_architecture", "batch_size",
                                                "numerics_policy", "enable_memory_optimization",
                                                "max_memory_usage")}
        fields.update(changes)
        return CompilationConfig(**fields)

    def to_dict(self):
        d = {k: v for k, v in vars(self).items() if k != "numerics_policy"}
        d["numerics_policy"] = self.numerics_policy.to_dict() if self.numerics_policy is not None else None
        return d

    def __repr__(self):
        return "CompilationConfig(" + ", ".join(f"{k}={v!r}" for k, v in vars(self).items()) + ")"


def check_options(fn, options, where):
    """(input_shapes, config) of `@ts.function(**options)` for `fn`; unknown options, unknown argument
    names and malformed shapes are CompilationErrors at the decorator (`where`)."""
    known = {"input_shapes", "compilation_config"}
    bad = sorted(set(options) - known)
    if bad:
        raise CompilationError(f"@ts.function: unknown option {', '.join(bad)} (known: input_shapes, "
                               "compilation_config)", *where)
    shapes = options.get("input_shapes")
    if shapes is not None:
        params = inspect.signature(fn).parameters
        if not isinstance(shapes, dict):
            raise CompilationError("@ts.function: input_shapes must be a dict of argument name -> dims", *where)
        for name, dims in shapes.items():
            if name not in params:
                raise CompilationError(f"@ts.function: input_shapes names '{name}', which is not a parameter of "
                                       f"{fn.__name__}", *where)
            if not isinstance(dims, (list, tuple)) or not all(isinstance(d, (str, int)) and not isinstance(d, bool)
                                                              for d in dims):
                raise CompilationError(f"@ts.function: input_shapes['{name}'] must be a list of dim names and ints, "
                                       f"got {dims!r}", *where)
    config = options.get("compilation_config")
    if config is not None and not isinstance(config, CompilationConfig):
        raise CompilationError(f"@ts.function: compilation_config must be a ts.CompilationConfig, got "
                               f"{type(config).__name__}", *where)
    if config is not None:
        module_only = [k for k, default in (("target_architecture", "auto"), ("batch_size", None),
                                            ("numerics_policy", None), ("max_memory_usage", None))
                       if getattr(config, k) != default]
        if module_only:
            raise CompilationError(f"@ts.function: compilation_config sets {', '.join(module_only)}, which apply to "
                                   "ts.compile(module, config=...); a function runs on its arrays' backend", *where)
    return shapes, config


def check_input_shapes(fn, shapes, args, kwargs):
    """ShapeError when a call's arrays disagree with `input_shapes`."""
    from .function import user_frame
    bound = inspect.signature(fn).bind_partial(*args, **kwargs).arguments
    seen = {}
    for name, dims in shapes.items():
        a = bound.get(name)
        shape = getattr(a, "shape", None)
        if shape is None:
            continue
        if len(shape) != len(dims):
            raise ShapeError(f"argument '{name}' has {len(shape)} dims, input_shapes gives {len(dims)} ({list(dims)})",
                             *user_frame())
        for d, n in zip(dims, shape):
            if isinstance(d, int) and d != n:
                raise ShapeError(f"argument '{name}' has size {n} where input_shapes gives {d}", *user_frame())
            if isinstance(d, str):
                if d in seen and seen[d][1] != n:
                    raise ShapeError(f"dim '{d}' is {seen[d][1]} in argument '{seen[d][0]}' but {n} in argument '{name}'",
                                     *user_frame())
                seen.setdefault(d, (name, n))
