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


class CompilationConfig:
    """How a @ts.function's graph is optimised (`@ts.jit(compilation_config=ts.CompilationConfig(...))`)."""

    def __init__(self, optimization_level="default", enable_delta_fusion=True, enable_pruning=True,
                 prune_threshold=0.01, **unsupported):
        from .function import user_frame
        if unsupported:
            raise CompilationError(f"ts.CompilationConfig: {', '.join(sorted(unsupported))} not supported (known: "
                                   "optimization_level, enable_delta_fusion, enable_pruning, prune_threshold)",
                                   *user_frame())
        if optimization_level not in _LEVELS:
            raise CompilationError(f"ts.CompilationConfig: optimization_level must be one of {', '.join(_LEVELS)}, "
                                   f"got {optimization_level!r}", *user_frame())
        if not isinstance(prune_threshold, (int, float)) or prune_threshold < 0:
            raise CompilationError(f"ts.CompilationConfig: prune_threshold must be a number >= 0, got "
                                   f"{prune_threshold!r}", *user_frame())
        self.optimization_level = optimization_level
        self.enable_delta_fusion = bool(enable_delta_fusion)
        self.enable_pruning = bool(enable_pruning)
        self.prune_threshold = float(prune_threshold)

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

    def __repr__(self):
        return (f"CompilationConfig(optimization_level={self.optimization_level!r}, enable_delta_fusion="
                f"{self.enable_delta_fusion}, enable_pruning={self.enable_pruning}, prune_threshold="
                f"{self.prune_threshold})")


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
