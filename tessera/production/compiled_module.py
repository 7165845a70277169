"""`ts.compile(module, input_shapes=..., config=..., export_formats=[...])` → `ts.CompiledModule`.

    cm = ts.compile(model, input_shapes={"input_ids": ["batch", 16]},
                    config=ts.CompilationConfig(target_architecture="cpu", batch_size=4))
    logits = cm(input_ids=ids)          # or cm(ids): the forward's argument names, keyword or positional
    cm.get_parameters(); cm.update_parameters({...}); cm.export("out/")

What a compiled module is: the module's forward traced with its parameters as graph inputs, run through
the config's graph pipeline (plus the passes of the `ts.optimizations` applied to the module), and planned
into kernels for the target. It holds its own copy of the parameters (cast per the numerics policy), so
later changes to the module do not reach it; `update_parameters` does.

Shapes: every dim of `input_shapes` is an int or a name. A name bound by `batch_size` (the first dim of each
input, when the config sets one) or by `dims={"sequence": 128}` is fixed; with every dim fixed the variant
compiles when `ts.compile` is called and a call of another shape is a ShapeError (deployment pads to the
variant). Names left free compile per call shape, consistently across inputs (like a @ts.jit function).
Input dtypes: `input_dtypes={name: dtype}`, else int32 for names ending in "ids" or containing "mask", else
the policy's activation dtype (f32)."""
from __future__ import annotations

import copy
import inspect

import numpy as np

from ..errors import BackendUnavailable, CompilationError, DTypeError, OutOfResources, ShapeError, located
from .. import dtypes as dt


def resolve_target(target):
    """"auto" → the attached GPU's target when CuPy sees one, else "cpu"; "sm_90" → "sm_90a"."""
    if target in (None, "auto"):
        try:
            from ..runtime.cuda import device_arch
            return device_arch()
        except Exception:   # no CuPy, no device, or an unsupported one: the CPU backend runs it
            return "cpu"
    return "sm_90a" if target == "sm_90" else target


def forward_arguments(module):
    """(the name of the module forward's `self`, the names of its inputs after it)."""
    from ..nn.module import forward_function
    params = list(inspect.signature(forward_function(type(module))).parameters.values())
    inputs = [p.name for p in params[1:] if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return params[0].name, inputs


def default_input_dtype(name, policy):
    if name.endswith("ids") or "mask" in name:
        return dt.i32
    return policy.activation_dtype if policy is not None else dt.f32


def with_parameters(module, arrays_by_name):
    """A copy of the module tree whose parameters are the given arrays (by dotted name); the copy shares
    nothing mutable with the original."""
    memo = {}

    def clone(m, prefix):
        if id(m) in memo:
            return memo[id(m)]
        c = copy.copy(m)
        memo[id(m)] = c
        object.__setattr__(c, "_parameters", {n: arrays_by_name.get(f"{prefix}{n}", a)
                                              for n, a in m._parameters.items()})
        object.__setattr__(c, "_modules", {n: clone(s, f"{prefix}{n}.") for n, s in m._modules.items()})
        object.__setattr__(c, "_requires_grad", dict(m._requires_grad))
        return c
    copied = clone(module, "")
    tied = {}   # a tied weight stays one array in the copy: later names read the first name's array
    for prefix, m in module.named_modules():
        for n, a in m._parameters.items():
            tied.setdefault(id(a), arrays_by_name.get(f"{prefix}.{n}" if prefix else n))
    for (prefix, m), (_, c) in zip(module.named_modules(), copied.named_modules()):
        for n, a in m._parameters.items():
            c._parameters[n] = tied[id(a)] if tied[id(a)] is not None else c._parameters[n]
    return copied


class CompiledModule:
    def __init__(self, module, input_shapes, config, dims=None, input_dtypes=None):
        from ..frontend.function_options import CompilationConfig
        from ..nn.module import Module
        if not isinstance(module, Module):
            raise located(CompilationError, f"ts.compile(module, ...) takes a ts.Module, got {type(module).__name__}")
        config = config if config is not None else CompilationConfig()
        if not isinstance(config, CompilationConfig):
            raise located(CompilationError, f"ts.compile: config must be a ts.CompilationConfig, got {type(config).__name__}")
        self.config = config
        self.target = resolve_target(config.target_architecture)
        self.module_class = f"{type(module).__module__}.{type(module).__qualname__}"
        self.self_argument, self.input_names = forward_arguments(module)
        self.input_shapes = self._check_shapes(input_shapes or {})
        self.dims = self._bind_dims(dims or {})
        policy = config.numerics_policy
        self.input_dtypes = {n: default_input_dtype(n, policy) for n in self.input_shapes}
        for n, d in (input_dtypes or {}).items():
            if n not in self.input_shapes:
                raise located(CompilationError, f"ts.compile: input_dtypes names '{n}', which is not in input_shapes")
            self.input_dtypes[n] = d if isinstance(d, dt.DType) else dt.by_name(str(d))
        own = {n: np.array(a, copy=True) for n, a in module.named_parameters()}
        if policy is not None:
            own = policy.cast_parameters(own)
        self._module = with_parameters(module, own)
        from .optimizations import graph_passes
        self.graph_passes = graph_passes(module)
        self.optimizations = [repr(o) for o in getattr(module, "_tessera_optimizations", ())]
        self._compiled = {}            # input shapes → CompiledFunction
        if self.fixed_shapes() is not None:
            self._compile(self.fixed_shapes())

    # -- shapes ------------------------------------------------------------------------------------------
    def _check_shapes(self, shapes):
        if not isinstance(shapes, dict) or not shapes:
            raise located(CompilationError, f"ts.compile(module): input_shapes must name the forward's inputs "
                               f"({', '.join(self.input_names)}) with their dims, got {shapes!r}")
        for name, dims in shapes.items():
            if name not in self.input_names:
                raise located(CompilationError, f"ts.compile: input_shapes names '{name}', which is not an input of "
                                   f"{self.module_class}.forward ({', '.join(self.input_names)})")
            if not isinstance(dims, (list, tuple)) or not all(
                    isinstance(d, str) or (isinstance(d, int) and not isinstance(d, bool) and d > 0) for d in dims):
                raise located(CompilationError, f"ts.compile: input_shapes['{name}'] must be a list of positive ints and dim "
                                   f"names, got {dims!r}")
        return {n: list(d) for n, d in shapes.items()}

    def _bind_dims(self, dims):
        bound = dict(dims)
        if self.config.batch_size is not None:
            for d in self.input_shapes.values():
                if d and isinstance(d[0], str):
                    bound.setdefault(d[0], self.config.batch_size)
        return bound

    def fixed_shapes(self):
        """{input: shape} when every dim is known (an ahead-of-time variant), else None."""
        out = {}
        for name, dims in self.input_shapes.items():
            shape = [self.dims.get(d) if isinstance(d, str) else d for d in dims]
            if any(s is None for s in shape):
                return None
            out[name] = tuple(shape)
        return out

    @property
    def batch_size(self):
        fixed = self.fixed_shapes()
        return next(iter(fixed.values()))[0] if fixed else self.config.batch_size

    def _check_call_shapes(self, inputs):
        fixed = self.fixed_shapes()
        seen = dict(self.dims)
        for name, dims in self.input_shapes.items():
            shape = tuple(inputs[name].shape)
            if fixed is not None and shape != fixed[name]:
                raise located(ShapeError, f"input '{name}' has shape {shape}; this variant is compiled for {fixed[name]}")
            if len(shape) != len(dims):
                raise located(ShapeError, f"input '{name}' has {len(shape)} dims, input_shapes gives {dims}")
            for d, n in zip(dims, shape):
                want = d if isinstance(d, int) else seen.setdefault(d, n)
                if want != n:
                    raise located(ShapeError, f"input '{name}': dim {d!r} is {want} elsewhere but {n} here")

    # -- compiling and running ---------------------------------------------------------------------------
    def _pipeline(self):
        """The config's graph pipeline with the applied optimisations' passes: one of the same pass replaces
        the config's (its options win), the others run before the final cleanup."""
        cleanup = ["canonicalize", "cse", "tessera-erase-dead-graph-ops"]
        passes = self.config.pipeline().split(",")
        passes = passes[:-3] if passes[-3:] == cleanup else passes
        for element in self.graph_passes:
            name = element.split("{")[0]
            same = [i for i, p in enumerate(passes) if p.split("{")[0] == name]
            if same:
                passes[same[0]] = element
            else:
                passes.append(element)
        return ",".join(passes + cleanup)

    def _examples(self, shapes):
        out = {}
        for name, shape in shapes.items():
            out[name] = np.zeros(shape, self.input_dtypes[name].to_numpy())
        return out

    def _compile(self, shapes):
        key = tuple(sorted((n, tuple(s)) for n, s in shapes.items()))
        ck = self._compiled.get(key)
        if ck is None:
            from ..graph.compile import compile_function
            from ..nn.module import module_function
            gf = module_function(type(self._module))
            ck = compile_function(gf, (self._module,), self._examples(shapes), target=self.target,
                                  pipeline=self._pipeline())
            if ck.plan is not None:
                ck.plan.keep_intermediates = not self.config.enable_memory_optimization
            self._check_memory(ck)
            self._compiled[key] = ck
        return ck

    def _check_memory(self, ck):
        limit = self.config.max_memory_usage
        if limit is None or ck.plan is None:
            return
        _, peak = ck.plan.liveness()
        need = peak + sum(a.nbytes for a in self._module.parameters())
        total = target_memory_bytes(self.target)
        if total and need > limit * total:
            raise located(OutOfResources, f"this variant needs {need / 2**20:.1f} MiB (weights + peak intermediates), over "
                                 f"max_memory_usage={limit} of the target's {total / 2**30:.1f} GiB")

    def _inputs(self, args, kwargs):
        if len(args) > len(self.input_names):
            raise located(CompilationError, f"{self.module_class}: {len(args)} positional inputs, the forward takes "
                               f"{len(self.input_names)} ({', '.join(self.input_names)})")
        inputs = dict(zip(self.input_names, args))
        for k, v in kwargs.items():
            if k not in self.input_names:
                raise located(CompilationError, f"{self.module_class}: unknown input '{k}' (inputs: {', '.join(self.input_names)})")
            if k in inputs:
                raise located(CompilationError, f"{self.module_class}: input '{k}' given twice")
            inputs[k] = v
        missing = [n for n in self.input_shapes if n not in inputs]
        if missing:
            raise located(CompilationError, f"{self.module_class}: missing input {', '.join(missing)}")
        from ..runtime import torch_interop
        inputs, _ = torch_interop.unwrap(inputs)
        out = {}
        for name, v in inputs.items():
            if v is None:
                continue
            if name not in self.input_shapes:
                raise located(CompilationError, f"{self.module_class}: input '{name}' is not in input_shapes of this compile")
            a = np.asarray(v)
            want = self.input_dtypes[name].to_numpy()
            if want.kind in "iub" and a.dtype.kind not in "iub":
                raise located(DTypeError, f"input '{name}' must hold integers ({want}), got {a.dtype}")
            out[name] = np.ascontiguousarray(a if a.dtype == want else a.astype(want))
        return out

    def __call__(self, *args, **kwargs):
        inputs = self._inputs(args, kwargs)
        self._check_call_shapes(inputs)
        ck = self._compile({n: a.shape for n, a in inputs.items()})
        return ck(self._module, **inputs)

    def compiled_function(self, shapes=None):
        """The CompiledFunction of these input shapes (default: the fixed variant's)."""
        shapes = shapes or self.fixed_shapes()
        if shapes is None:
            raise located(CompilationError, "this compiled module has free dims: give the input shapes")
        return self._compile(shapes)

    @property
    def asm(self):
        ck = self.compiled_function() if self.fixed_shapes() else next(iter(self._compiled.values()), None)
        return {} if ck is None else ck.asm

    # -- parameters --------------------------------------------------------------------------------------
    def get_parameters(self):
        """{name: ParameterInfo} (its `.array` is the compiled module's own array)."""
        from ..gdn.compiled_lm import ParameterInfo
        grads = {}
        for prefix, m in self._module.named_modules():
            for n, flag in m._requires_grad.items():
                grads[f"{prefix}.{n}" if prefix else n] = flag
        return {n: ParameterInfo(n, a, grads.get(n, True)) for n, a in self._module.named_parameters()}

    def state_dict(self):
        return self._module.state_dict()

    def update_parameters(self, updates):
        """Copy new values (by name) into the compiled module's parameters; shapes checked, dtype cast."""
        if not isinstance(updates, dict):
            raise located(CompilationError, f"update_parameters takes a dict {{name: array}}, got {type(updates).__name__}")
        self._module.load_state_dict(updates, strict=False)
        unknown = [n for n in updates if n not in self._module.state_dict()]
        if unknown:
            raise located(CompilationError, f"update_parameters: no parameter {unknown[0]!r}")

    def get_memory_usage(self):
        """{"parameters": bytes, "peak_intermediates": bytes of the largest compiled variant}."""
        peaks = [ck.plan.liveness()[1] for ck in self._compiled.values() if ck.plan is not None]
        return {"parameters": int(sum(a.nbytes for a in self._module.parameters())),
                "peak_intermediates": int(max(peaks, default=0))}

    def export(self, directory, name=None):
        """Save this compiled variant as a one-variant deployment package in `directory` (its plan, safetensors
        weights, ONNX when export_formats asked for it, checksums): `ts.DeploymentPackage.load(directory)` /
        `ts.deploy(model_name=..., package=directory)` run it without MLIR."""
        from .package import DeploymentPackage
        name = name or f"{self.target}_batch_{self.batch_size}"
        return DeploymentPackage().add_variant(name=name, model=self).save(directory)

    def __repr__(self):
        return (f"<CompiledModule {self.module_class} target={self.target} shapes="
                f"{self.fixed_shapes() or self.input_shapes}>")


def target_memory_bytes(target):
    if target == "cpu":
        try:
            import os
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            return None
    try:
        from ..runtime.cuda import cupy
        return int(cupy().cuda.Device().mem_info[1])
    except Exception:
        return 80 << 30 if target == "sm_90a" else 40 << 30   # not attached here: the smallest A100 / H100


def compile_module(module, input_shapes=None, config=None, export_formats=(), dims=None, input_dtypes=None):
    from ..nn.module import Module
    if not isinstance(module, Module):
        raise located(CompilationError, f"ts.compile(..., input_shapes=...) compiles a ts.Module, got {type(module).__name__}")
    formats = list(export_formats or ())
    for f in formats:
        if f not in ("cubin", "onnx", "tensorrt", "plan"):
            raise located(CompilationError, f"ts.compile: unknown export format {f!r} (cubin, onnx, plan; tensorrt needs the "
                               "tensorrt package)")
    if "tensorrt" in formats:
        try:
            import tensorrt  # noqa: F401
        except ImportError:
            raise located(BackendUnavailable, "export_formats: 'tensorrt' needs the tensorrt package, which is not "
                                     "installed (pip install tensorrt on a machine with CUDA); tessera exports "
                                     "cubin, onnx and its own plans without it") from None
        raise located(BackendUnavailable, "export_formats: tensorrt is importable but tessera has no TensorRT exporter yet")
    cm = CompiledModule(module, input_shapes, config, dims=dims, input_dtypes=input_dtypes)
    if "cubin" in formats and cm.target == "cpu":
        raise located(CompilationError, "export_formats: 'cubin' needs a GPU target (target_architecture='sm_80' or 'sm_90a')")
    if formats and cm.fixed_shapes() is None:
        raise located(CompilationError, "export_formats need every input dim fixed: bind the named dims with batch_size= in the "
                           "config or dims={...}")
    cm.export_formats = formats
    if "onnx" in formats:
        cm.onnx_model = cm_onnx(cm)
    if "cubin" in formats:
        cm.cubins = cm.asm.get("cubin", [])
    return cm


def cm_onnx(cm, path=None):
    """The ONNX model (onnx.ModelProto; written to `path` when given) of a compiled module's fixed variant:
    the forward's inputs are the graph inputs, the parameters initializers named by their dotted names
    (tessera.exporters.onnx)."""
    from ..exporters import export_onnx
    state = cm.state_dict()
    self_name = cm.self_argument
    return export_onnx(cm.compiled_function(), path, initializers={f"{self_name}.{n}": a for n, a in state.items()},
                       input_names={f"{self_name}.{n}": n for n in state}, model_name=cm.module_class)
