"""`@ts.kernel`: the decorator, argument binding, specialisation and launch."""
from __future__ import annotations

import inspect

import numpy as np

from .. import dtypes as dt, knobs
from ..errors import CompilationError, ShapeError, DTypeError, LaunchError, TesseraError, BackendUnavailable
from ..runtime.cuda import small_int, small_tensor, whole_chunk_rows
from ..runtime import torch_interop
from .annotations import TensorSpec, Tensor, constexpr
from .source import KernelSource
from .kernel_args import (index32, _list_of_tensors, _int_scalar, _call_error, _check_launch_options,  # noqa: F401
                          _check_outputs, _is_cuda_array, _tma_ok, _check_grid, _ANY_TENSOR, _check_scalar_range,
                          _array_arg, _tensor_dims, _dtype_name, launch_signature, LAUNCH_CACHE_SIZE)

from ..runtime.autotune import OPTIONS as _OPTIONS  # noqa: E402
_INDEX = None


def _index_dtype():
    from .codegen.base import INDEX  # imports mlir: only when compiling
    return INDEX


CONTEXT = "__context__"   # bound values: launch keywords the body reads from tile.context() (not parameters)


class Param:
    """One parameter of a kernel: tensor, runtime scalar or constexpr."""

    def __init__(self, name, kind, spec=None, scalar=None, default=inspect.Parameter.empty):
        self.name, self.kind, self.spec, self.scalar, self.default = name, kind, spec, scalar, default


class BoundParam:
    """A parameter with what one launch gave it (what codegen reads)."""

    def __init__(self, name, kind, dtype=None, dims=(), abi_dtype=None, tma_ok=False, whole_chunks=False, small=False,
                 length=None):
        self.name, self.kind, self.dtype, self.dims, self.abi_dtype = name, kind, dtype, tuple(dims), abi_dtype
        self.length = length  # tensor lists: the number of tensors (a compile-time constant, `len(xs)`)
        self.small = small  # 32-bit index arithmetic suffices (runtime.cuda.small_tensor / small_int): with every
        # tensor and integer argument small, NVIDIA kernels are specialised on it (tessera-narrow-index)
        self.tma_ok = tma_ok  # stride class: unit inner stride, 16-byte aligned strides (and base): TMA on
        # sm_90a, 16-byte vector loads and stores on every NVIDIA target
        self.whole_chunks = whole_chunks  # and the last dim is a whole number of 16-byte chunks (Triton's
        # divisibility specialisation): a run of the last dim is wholly in bounds or wholly out


class Specialisation:
    def __init__(self, params, constexprs, dim_values, spec_dims, options):
        self.params = params
        self.constexprs = constexprs
        self.dim_values = dim_values
        self.spec_dims = frozenset(spec_dims)
        self.options = options

    @property
    def index32(self) -> bool:
        return index32(self.params)

    def arg_abi(self):
        out, narrow = [], self.index32
        for p in self.params:
            if p.kind == "tensor":
                spec = {"name": p.name, "kind": "tensor", "dtype": p.dtype.name, "rank": len(p.dims)}
                if getattr(p, "tma_ok", False):   # compiled for the aligned stride class: launchers check it
                    spec["aligned"] = True
                if getattr(p, "whole_chunks", False):
                    spec["whole_chunks"] = True
                if narrow:
                    spec["index32"] = True
                out.append(spec)
            elif p.kind == "tensor_list":
                spec = {"name": p.name, "kind": "tensor_list", "dtype": p.dtype.name, "rank": len(p.dims),
                        "length": p.length}
                if narrow:
                    spec["index32"] = True
                out.append(spec)
            elif p.kind == "scalar":
                spec = {"name": p.name, "kind": "scalar", "dtype": getattr(p.dtype, "name", p.dtype), "abi": p.abi_dtype.name}
                if narrow and _int_scalar(p):
                    spec["index32"] = True
                out.append(spec)
        return out


def _launch_kind(p, v):
    """How a parameter's value is passed: "constexpr" (compiled in), "tensor", "tensor_list" or "scalar"."""
    if p.kind != "auto":
        return p.kind
    if isinstance(v, (bool, int, float, np.number)):
        return "scalar"
    if isinstance(v, np.ndarray) or _is_cuda_array(v):
        return "tensor"
    if isinstance(v, (list, tuple)) and v and all(isinstance(x, np.ndarray) or _is_cuda_array(x) for x in v):
        return "tensor_list"
    return "constexpr"


class GridLauncher:
    """`kernel[grid]`: call it to launch, or `.prepare(*args)` for a launch packed once."""

    def __init__(self, kernel, grid):
        self.kernel, self.grid = kernel, grid

    def __call__(self, *args, **kwargs):
        (args, kwargs), _ = torch_interop.unwrap((args, kwargs))   # CPU tensors: written in place through views
        try:
            return self.kernel.run(self.grid, args, kwargs)
        except TesseraError as e:
            _reraise(e)

    def prepare(self, *args, **kwargs):
        (args, kwargs), _ = torch_interop.unwrap((args, kwargs))
        try:
            return self.kernel.prepare_launch(self.grid, args, kwargs)
        except TesseraError as e:
            _reraise(e)


def _reraise(e):
    """User errors surface without our internal frames unless TESSERA_DEBUG=1."""
    if knobs.debug():
        raise e
    raise e.with_traceback(None) from None


class KernelFunction:
    def __init__(self, fn):
        self.fn = fn
        self.__name__ = fn.__name__
        self.__doc__ = fn.__doc__
        self.info = KernelSource(fn)
        self.params = self._classify()
        self._compiled = {}
        self._spec_dims = {}
        self._launches = {}   # launch signature → (compiled kernel, how each runtime argument is passed)
        from ..runtime.cache import key_of
        self._source_key = key_of(self.info.source, self.info.dependency_key())  # hashed once, not per launch

    def __repr__(self):
        return f"<tessera kernel {self.__name__}>"

    def __call__(self, *args, **kwargs):
        raise _call_error(f"launch a kernel with a grid: {self.__name__}[grid](*args)")

    def __getitem__(self, grid):
        return GridLauncher(self, grid)

    def prepare(self, *args, grid=None, **kwargs):
        """A launch with its argument buffer packed once: `h = k.prepare(*args, grid=g); h()`.
        The arrays stay referenced by the handle; their contents may change between calls."""
        try:
            return self.prepare_launch(grid, args, kwargs)
        except TesseraError as e:
            _reraise(e)

    def prepare_launch(self, grid, args, kwargs):
        values, options = self.bind(args, dict(kwargs))
        target = self.target_for(values)
        ck, runtime_args = self.compile_for(values, options, target)
        return self.prepare_compiled(ck, self.resolve_grid(grid, ck, values) if grid is not None else None,
                                     runtime_args)

    def prepare_compiled(self, ck, grid, runtime_args):
        _check_outputs(ck, runtime_args)
        return ck.prepare_runtime(None if grid is None else _check_grid(grid, ck.target), runtime_args)

    # -- parameters ------------------------------------------------------------------------
    def _classify(self):
        sig = inspect.signature(self.fn)
        out = []
        for name, p in sig.parameters.items():
            ann = self._annotation(p.annotation)
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise CompilationError("kernels take no *args / **kwargs", self.info.filename, self.info.line_offset + 1)
            if ann is constexpr or isinstance(ann, constexpr):
                out.append(Param(name, "constexpr", default=p.default))
            elif isinstance(ann, TensorSpec):
                out.append(Param(name, "tensor", spec=ann, default=p.default))
            elif ann is Tensor:
                out.append(Param(name, "tensor", spec=None, default=p.default))
            elif _list_of_tensors(ann):
                elem = ann.__args__[0] if getattr(ann, "__args__", None) else None
                out.append(Param(name, "tensor_list", spec=elem if isinstance(elem, TensorSpec) else None,
                                 default=p.default))
            elif ann in (int, float, bool) or isinstance(ann, dt.DType):
                out.append(Param(name, "scalar", scalar=ann, default=p.default))
            elif ann is np.ndarray:
                out.append(Param(name, "tensor", spec=None, default=p.default))
            elif ann in (inspect.Parameter.empty, None, object) or repr(ann) == "typing.Any":
                out.append(Param(name, "auto", default=p.default))
            else:
                raise CompilationError(f"parameter '{name}': unsupported annotation {ann!r} (tile.Tensor[...], "
                                       "list[tile.Tensor], ts.constexpr, int, float, bool or a ts dtype)",
                                       self.info.filename, self.info.line_offset + 1)
        return out

    def _annotation(self, ann):
        """Evaluate string annotations (`from __future__ import annotations`) in the function's
        globals and closure; fall back to recognising the spelling."""
        if not isinstance(ann, str):
            return ann
        env = {**self.info.globals, **self.info.closure}
        try:
            return eval(ann, env)  # noqa: S307 - the user's own annotation expression
        except TesseraError as e:
            if getattr(e, "filename", None) not in (None, "<string>"):
                raise
            raise CompilationError(f"cannot evaluate the annotation {ann!r}: {getattr(e, 'msg', e)}",
                                   self.info.filename, self.info.line_offset + 1) from None
        except Exception as e:  # noqa: BLE001 - unresolvable names: recognise the common spellings
            tail = ann.replace(" ", "")
            if tail.endswith("constexpr"):
                return constexpr
            if tail in ("int", "float", "bool"):
                return {"int": int, "float": float, "bool": bool}[tail]
            raise CompilationError(f"cannot evaluate the annotation {ann!r}: {type(e).__name__}: {e}",
                                   self.info.filename, self.info.line_offset + 1) from None

    # -- launch ----------------------------------------------------------------------------
    def bind(self, args, kwargs):
        options = {k: kwargs.pop(k) for k in list(kwargs) if k in _OPTIONS and k not in {p.name for p in self.params}}
        _check_launch_options(options)
        names = [p.name for p in self.params]
        if len(args) > len(names):
            raise _call_error(f"{self.__name__}() takes {len(names)} arguments, got {len(args)}")
        values = dict(zip(names, args))
        context = {}
        for k, v in kwargs.items():
            if k not in names and k in self.info.context_names():
                context[k] = v   # a constexpr the body reads as tile.context().NAME (DESIGN §4)
                continue
            if k not in names:
                raise _call_error(f"{self.__name__}() got an unexpected keyword argument '{k}'")
            if k in values:
                raise _call_error(f"{self.__name__}() got multiple values for argument '{k}'")
            values[k] = v
        for p in self.params:
            if p.name not in values:
                if p.default is inspect.Parameter.empty:
                    raise _call_error(f"{self.__name__}() missing argument '{p.name}'")
                values[p.name] = p.default
        if context:
            values[CONTEXT] = context
        return values, options

    def specialise(self, values, options, target, extra_constexprs=None):
        """`extra_constexprs`: tuning parameters that are not kernel parameters (the seeds read
        them as `tile.context().BLOCK_B`)."""
        bound, constexprs, dim_values, dim_src = [], {**values.get(CONTEXT, {}), **(extra_constexprs or {})}, {}, {}
        runtime_args = []
        for p in self.params:
            v = values[p.name]
            kind = _launch_kind(p, v)
            if kind == "constexpr":
                constexprs[p.name] = v.value if isinstance(v, constexpr) else v
                continue
            if kind == "tensor_list":
                bound.append(self._bind_list(p, v, target, dim_values, dim_src))
                runtime_args.append(list(v))
                continue
            if kind == "tensor":
                v = _array_arg(p.name, v)
                adt, dims = _tensor_dims(p.name, p.spec, v, dim_values, dim_src)
                tma_ok = target != "cpu" and _tma_ok(v)
                bound.append(BoundParam(p.name, "tensor", adt, dims, tma_ok=tma_ok,
                                        whole_chunks=tma_ok and whole_chunk_rows(v.shape, v.itemsize),
                                        small=target != "cpu" and small_tensor(v.shape, v.strides, v.itemsize)))
                runtime_args.append(v)
            else:
                ann = p.scalar
                if ann is None:
                    ann = bool if isinstance(v, (bool, np.bool_)) else int if isinstance(v, (int, np.integer)) else float
                if ann is int or (isinstance(ann, dt.DType) and ann.is_int and ann is not dt.bool_):
                    if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
                        raise _call_error(f"argument '{p.name}' must be an int, got {type(v).__name__}", DTypeError)
                elif ann is float or (isinstance(ann, dt.DType) and ann.is_float):
                    if not isinstance(v, (int, float, np.integer, np.floating)) or isinstance(v, bool):
                        raise _call_error(f"argument '{p.name}' must be a float, got {type(v).__name__}", DTypeError)
                elif ann is bool or ann is dt.bool_:
                    if not isinstance(v, (bool, np.bool_)):
                        raise _call_error(f"argument '{p.name}' must be a bool, got {type(v).__name__}", DTypeError)
                _check_scalar_range(p.name, v, dt.i64 if ann is int else ann)
                if ann is int:
                    bound.append(BoundParam(p.name, "scalar", "index", abi_dtype=dt.i64, small=small_int(v)))
                elif ann is float:
                    bound.append(BoundParam(p.name, "scalar", dt.f32, abi_dtype=dt.f32))
                elif ann is bool:
                    bound.append(BoundParam(p.name, "scalar", dt.bool_, abi_dtype=dt.bool_))
                else:
                    bound.append(BoundParam(p.name, "scalar", ann, abi_dtype=ann,
                                            small=ann.is_int and ann is not dt.bool_ and small_int(v)))
                runtime_args.append(v)
        base_key = (self._source_key, target, sorted((k, repr(v)) for k, v in constexprs.items()),
                    [(b.name, b.kind, getattr(b.dtype, "name", b.dtype), b.dims, b.tma_ok, b.whole_chunks, b.length)
                     for b in bound], index32(bound),
                    sorted(options.items()))
        return bound, constexprs, dim_values, base_key, runtime_args

    def _bind_list(self, p, v, target, dim_values, dim_src):
        """A `list[tile.Tensor]` argument: arrays of one dtype and rank; named dims (annotated, or
        `xs[*].shape[i]`) agree across the elements and with the other arguments."""
        if not isinstance(v, (list, tuple)):
            raise _call_error(f"argument '{p.name}' must be a list of arrays, got {type(v).__name__}")
        if not v:
            raise _call_error(f"argument '{p.name}' is an empty list: a kernel over a list of tensors needs at "
                              "least one (its dtype and rank come from the elements)")
        spec = p.spec
        dtype, dims, small = None, None, True
        for i, x in enumerate(v):
            name = f"{p.name}[{i}]"
            x = _array_arg(name, x)
            elem_spec = spec if spec is not None else _ANY_TENSOR
            adt, xdims = _tensor_dims(name, elem_spec, x, dim_values, dim_src,
                                      default_dim=lambda k: f"{p.name}[*].shape[{k}]")
            if dtype is not None and adt is not dtype:
                raise _call_error(f"argument '{name}' has dtype {adt.name}, '{p.name}[0]' has {dtype.name}: "
                                  "the tensors of a list have one dtype", DTypeError)
            if dims is not None and len(xdims) != len(dims):
                raise _call_error(f"argument '{name}' has rank {len(xdims)}, '{p.name}[0]' has rank {len(dims)}: "
                                  "the tensors of a list have one rank", ShapeError)
            dtype, dims = adt, xdims
            small = small and target != "cpu" and small_tensor(x.shape, x.strides, x.itemsize)
        return BoundParam(p.name, "tensor_list", dtype, dims, small=small, length=len(v))

    def target_for(self, values):
        forced = knobs.backend()
        arrays = []
        for p in self.params:
            v = values.get(p.name)
            for a in (v if isinstance(v, (list, tuple)) else [v]):
                if isinstance(a, np.ndarray) or _is_cuda_array(a):
                    arrays.append(a)
        kinds = {"cuda" if _is_cuda_array(a) else "cpu" for a in arrays}
        if len(kinds) > 1:
            raise _call_error(f"{self.__name__}: NumPy and GPU arrays mixed in one launch")
        kind = forced or (kinds.pop() if kinds else "cpu")
        if kind == "emu":
            if any(_is_cuda_array(a) for a in arrays):
                raise _call_error(f"{self.__name__}: TESSERA_BACKEND=emu needs NumPy arrays")
            arch = knobs.emu_arch()
            if arch not in ("sm_80", "sm_90a"):
                raise _call_error(f"TESSERA_EMU_ARCH={arch}: expected sm_80 or sm_90a")
            return arch
        if kind not in ("cpu", "cuda"):
            raise _call_error(f"TESSERA_BACKEND={kind}: expected cpu, cuda or emu")
        if kind == "cpu":
            if any(_is_cuda_array(a) for a in arrays):
                raise _call_error(f"{self.__name__}: TESSERA_BACKEND=cpu needs NumPy arrays")
            return "cpu"
        if any(isinstance(a, np.ndarray) for a in arrays):
            raise _call_error(f"{self.__name__}: TESSERA_BACKEND=cuda needs GPU arrays (CuPy, torch CUDA tensors)")
        from ..runtime.cuda import device_arch
        return device_arch()

    def run(self, grid, args, kwargs):
        values, options = self.bind(args, dict(kwargs))
        ck, runtime_args = self._compiled_for_launch(values, options)
        self._launch(ck, self.resolve_grid(grid, ck, values), runtime_args)
        return ck

    def _compiled_for_launch(self, values, options):
        """compile_for's (ck, runtime args), remembered by the launch's signature: a launch like an earlier one
        (the graph executor's, a training loop's) skips specialising and hashing its compile key again."""
        forced = knobs.backend()
        sig = None if CONTEXT in values else launch_signature(
            self.params, values, options, (forced, knobs.emu_arch() if forced == "emu" else None))
        hit = self._launches.get(sig) if sig is not None else None
        if hit is not None and any(c is hit[0] for c in self._compiled.values()):   # (not cleared since)
            ck, kinds = hit
            return ck, [list(values[n]) if k == "tensor_list" else values[n] for n, k in kinds]
        ck, runtime_args = self.compile_for(values, options, self.target_for(values))
        if sig is not None:
            if len(self._launches) >= LAUNCH_CACHE_SIZE:
                self._launches.clear()
            kinds = [(p.name, k) for p in self.params if (k := _launch_kind(p, values[p.name])) != "constexpr"]
            self._launches[sig] = (ck, kinds)
        return ck, runtime_args

    def named_dims(self, values):
        out = {}
        for p in self.params:
            v = values.get(p.name)
            if p.kind == "tensor_list" and isinstance(v, (list, tuple)) and v:
                v = v[0]
            shape = getattr(v, "shape", None)
            if p.spec is not None and p.spec.dims and shape is not None:
                out.update({d: int(n) for d, n in zip(p.spec.dims, shape) if isinstance(d, str)})
        return out

    def resolve_grid(self, grid, ck, values):
        """A callable grid gets the launch's meta-parameters: constexprs (tuned ones included),
        launch options, named dims and the arguments by name."""
        if not callable(grid):
            return grid
        from ..runtime.autotune import Meta
        m = ck.metadata
        plain = {k: v for k, v in values.items() if k != CONTEXT}
        meta = Meta({**self.named_dims(values), **plain, **values.get(CONTEXT, {}), "num_warps": m.get("num_warps", 4),
                     **m.get("options", {}), **m.get("constexprs", {})})
        try:
            return grid(meta)
        except TesseraError:
            raise
        except Exception as e:  # noqa: BLE001 - the user's grid function failed: say so at the launch
            raise _call_error(f"the grid function raised {type(e).__name__}: {e}", LaunchError) from None

    def _launch(self, ck, grid, runtime_args):
        _check_outputs(ck, runtime_args)
        grid = _check_grid(grid, ck.target)
        if 0 in grid:
            return
        cluster = ck.metadata.get("cluster", (1, 1, 1))
        if ck.target != "cpu" and any(g % c for g, c in zip(grid, cluster)):
            raise _call_error(f"grid {grid} is not a whole number of clusters {tuple(cluster)} (num_ctas)")
        ck.launch(grid, runtime_args)

    def bind_compiled(self, ck, args, kwargs):
        """(values, runtime args) of a launch of an already compiled `ck`: its constexprs (an
        autotuned config's included) fill what the call leaves out; a different value is an error,
        since `ck` cannot run it."""
        compiled = ck.metadata.get("constexprs", {})
        kwargs = dict(kwargs)
        for p in self.params:
            if p.name in compiled and p.name in kwargs and kwargs[p.name] != compiled[p.name]:
                raise _call_error(f"{self.__name__} was compiled with {p.name}={compiled[p.name]!r}, not "
                                  f"{kwargs[p.name]!r}: launch the kernel itself to compile that value")
        positional = {p.name for p in self.params[:len(args)]}
        for p in self.params:
            if p.name in compiled and p.name not in kwargs and p.name not in positional:
                kwargs[p.name] = compiled[p.name]
        own = {**ck.metadata.get("options", {}), "num_warps": ck.metadata.get("num_warps", 4)}
        for k in _OPTIONS:
            if k in kwargs and k not in {p.name for p in self.params}:
                v = kwargs.pop(k)  # launch options are the compiled kernel's own
                if k in own and v != own[k]:
                    raise _call_error(f"{self.__name__} was compiled with {k}={own[k]!r}, not {v!r}")
        values, options = self.bind(args, kwargs)
        _, _, _, _, runtime_args = self.specialise(values, options, ck.target)
        return values, runtime_args

    def _launch_compiled(self, ck, grid, args, kwargs):
        try:
            values, runtime_args = self.bind_compiled(ck, args, kwargs)
            self._launch(ck, self.resolve_grid(grid, ck, values), runtime_args)
            return ck
        except TesseraError as e:
            _reraise(e)

    def compile_for(self, values, options, target, extra_constexprs=None):
        from ..compiler import compile_spec, load_cached, COMPILER_ID, codegen_fingerprint
        from ..runtime import cache
        bound, constexprs, dim_values, base_key, runtime_args = self.specialise(values, options, target,
                                                                                extra_constexprs)
        base = cache.key_of(base_key, COMPILER_ID, codegen_fingerprint())
        spec_dims = self._spec_dims.get(base)
        if spec_dims is None:
            spec_dims = frozenset(cache.read_index(base, valid=dim_values) or ())  # naming other dims: corrupt
        for _ in range(16):
            key = cache.key_of(base, sorted((d, dim_values.get(d)) for d in spec_dims))
            ck = self._compiled.get(key)
            if ck is not None:
                self._spec_dims[base] = spec_dims
                return ck, runtime_args
            ck = load_cached(self, key, target)
            if ck is None:  # compiling needs mlir; a GPU kernel found in the disk cache does not
                from .codegen.base import INDEX, NeedSpecialisation
                for b in bound:
                    if b.dtype == "index":
                        b.dtype = INDEX
                spec = Specialisation(bound, constexprs, dim_values, spec_dims, options)
                try:
                    ck = compile_spec(self, spec, target, key)
                except NeedSpecialisation as need:
                    missing = need.dims - set(dim_values)
                    if missing:
                        raise CompilationError(f"dim(s) {sorted(missing)} are not bound by any argument") from None
                    spec_dims = spec_dims | need.dims
                    self._spec_dims[base] = spec_dims
                    cache.write_index(base, sorted(spec_dims))
                    continue
            ck.metadata.setdefault("constexprs", constexprs)
            ck.metadata.setdefault("options", dict(options))
            self._compiled[key] = ck
            self._spec_dims[base] = spec_dims
            self._note_specialisation(target, options, constexprs, bound, dim_values, spec_dims,
                                      ck.metadata.get("from_disk_cache", False))
            return ck, runtime_args
        raise CompilationError(f"{self.__name__}: specialisation did not converge")

    def _note_specialisation(self, target, options, constexprs, bound, dim_values, spec_dims, from_disk):
        """Tell the recompile log which key this specialisation has (DESIGN §4 cache key parts)."""
        from ..runtime import recompile
        from .function import user_frame
        descriptor = {
            "target": {"target": target},
            "option": {k: options[k] for k in sorted(options)},
            "constexpr": {k: repr(v) for k, v in sorted(constexprs.items())},
            "dim": {d: dim_values.get(d) for d in sorted(spec_dims)},
            "dtype": {b.name: _dtype_name(b) for b in bound},
            "rank": {b.name: len(b.dims) for b in bound if b.kind == "tensor"},
            "stride": {b.name: "TMA-compatible" if b.tma_ok else "general"
                       for b in bound if b.kind == "tensor" and target != "cpu"},
            "last dim": {b.name: "whole 16-byte chunks" if b.whole_chunks else "any length"
                         for b in bound if b.kind == "tensor" and b.tma_ok},
        }
        if target != "cpu":
            descriptor["index"] = {"bits": 32 if index32(bound) else 64}
        file, line, _ = user_frame()
        recompile.record(self, self.__name__, descriptor, (file, line), from_disk)


class _KernelDecorator:
    """`@ts.kernel` and `@ts.kernel.autotune(space=..., key=...)` (tessera.runtime.autotune)."""

    def __call__(self, fn=None, **options):
        if fn is None:
            return lambda f: KernelFunction(f)
        return KernelFunction(fn)

    def autotune(self, space=None, key=None, **kw):
        from ..runtime.autotune import autotune
        return autotune(space=space, key=key, **kw)


kernel = _KernelDecorator()


def compile_kernel(kfn: KernelFunction, *example_args, target="cpu", **kwargs):
    """ts.compile for kernels: example arrays give shapes/dtypes; constexprs as keywords."""
    try:
        values, options = kfn.bind(example_args, dict(kwargs))
        from ..compiler import TARGETS
        if target not in TARGETS:
            raise _call_error(f"unknown target '{target}' (known: {', '.join(TARGETS)})", BackendUnavailable)
        ck, _ = kfn.compile_for(values, options, target)
        return ck
    except TesseraError as e:
        _reraise(e)


def compile_autotuned(tuner, example_args, target, kwargs):
    from ..compiler import TARGETS
    try:
        if target not in TARGETS:
            raise _call_error(f"unknown target '{target}' (known: {', '.join(TARGETS)})", BackendUnavailable)
        return tuner.compile(example_args, target, dict(kwargs))
    except TesseraError as e:
        _reraise(e)
