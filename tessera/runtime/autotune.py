"""`@ts.kernel.autotune(space=dict(...), key=[...])`, as the seeds write it.

At a launch whose key values (named dims, parameter values) have not been tuned on this device
with this compiler, every config of the space (the cartesian product of its lists) is first
compiled; configs over the target's shared-memory, register or thread budget are rejected there,
before anything is timed. The survivors are timed on the launch's own arguments, every result is
stored in the tuning database (`tuning_db`), and the fastest config runs the launch. Later
launches — in this process or another — with the same key reuse the stored choice.

A space entry is a constexpr parameter of the kernel, a launch option (`num_warps`, `num_stages`,
`num_ctas`, `warp_specialize`, `persistent`), or any other name, which the kernel reads as `tile.context().NAME`. The grid may be a
callable of the launch's meta-parameters (`lambda meta: (cdiv(meta["B"], meta["BLOCK_B"]),)`).
Timing re-runs the kernel, so a kernel that updates an argument in place names it in
`restore_value` to have it restored between runs. MLIR-free: compiling goes through the kernel."""
from __future__ import annotations

import itertools
import os
import platform
import statistics
import sys
import time

from .. import knobs
from ..errors import CompilationError, LaunchError, OutOfResources, TesseraError
from .tuning_db import TuningDB

OPTIONS = ("num_warps", "num_stages", "num_ctas", "warp_specialize", "persistent")   # launch / compile options (also the frontend's)
MAX_THREADS = 1024


class Meta(dict):
    """The launch meta-parameters a grid callable receives: `meta["BLOCK_B"]` or `meta.BLOCK_B`."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


_DEVICE_IDS: dict = {}


def device_id(target: str) -> str:
    """What makes timings comparable: the GPU's name and compute capability, or the CPU (read once
    per device: the property query is slow)."""
    if target == "cpu":
        return f"cpu:{platform.machine()}:{platform.processor() or 'unknown'}:{os.cpu_count()}"
    if knobs.backend() == "emu":
        return f"emu:{target}"
    import cupy as cp
    index = cp.cuda.runtime.getDevice()
    if index not in _DEVICE_IDS:
        dev = cp.cuda.Device(index)
        name = cp.cuda.runtime.getDeviceProperties(index)["name"]
        name = name.decode() if isinstance(name, bytes) else str(name)
        _DEVICE_IDS[index] = f"cuda:{name}:sm_{dev.compute_capability}"
    return _DEVICE_IDS[index]


class _Progress:
    """A one-line progress bar on stderr (a line per config where stderr is not a terminal)."""

    def __init__(self, name, total):
        self.name, self.total, self.done = name, total, 0
        self.tty = hasattr(sys.stderr, "isatty") and sys.stderr.isatty()

    def step(self, config, what):
        self.done += 1
        width = 24
        fill = width * self.done // max(self.total, 1)
        bar = "#" * fill + "." * (width - fill)
        text = f"[tessera] autotune {self.name} [{bar}] {self.done}/{self.total} {_fmt(config)}: {what}"
        if self.tty:
            sys.stderr.write("\r\033[K" + text + ("\n" if self.done == self.total else ""))
        else:
            sys.stderr.write(text + "\n")
        sys.stderr.flush()


def _fmt(config):
    return " ".join(f"{k}={v}" for k, v in config.items())


def _copy(a):
    return a.clone() if type(a).__module__.startswith("torch") else a.copy()


def _restore(dst, src):
    if type(dst).__module__.startswith("torch"):
        dst.copy_(src)
    else:
        dst[...] = src


class Autotuner:
    def __init__(self, kernel, space, key=(), warmup=1, rep=5, restore_value=()):
        from ..frontend.kernel import KernelFunction
        self.kernel = kernel if isinstance(kernel, KernelFunction) else KernelFunction(kernel)
        self.__name__ = self.kernel.__name__
        self.__doc__ = self.kernel.__doc__
        info = self.kernel.info
        where = (info.filename, info.line_offset + 1)
        explicit = None
        if isinstance(space, (list, tuple)) and space and all(isinstance(c, dict) for c in space):
            explicit = [dict(c) for c in space]  # configs=[{...}, ...], as Triton lists them
            space = {k: sorted({c[k] for c in explicit if k in c}, key=repr) for c in explicit for k in c}
            if any(set(c) != set(space) for c in explicit):
                raise CompilationError("autotune configs must all name the same parameters", *where)
        if not isinstance(space, dict) or not space:
            raise CompilationError("autotune needs space=dict(NAME=[values, ...], ...) or configs=[{...}, ...]",
                                   *where)
        self.space = {}
        for name, values in space.items():
            values = list(values) if isinstance(values, (list, tuple, range)) else [values]
            if not values:
                raise CompilationError(f"autotune space entry '{name}' has no values", *where)
            self.space[name] = values
        params = {p.name: p for p in self.kernel.params}
        for name in self.space:
            if name in params and params[name].kind not in ("constexpr", "auto"):
                raise CompilationError(f"autotune space entry '{name}' is a {params[name].kind} parameter; only "
                                       "constexpr parameters, launch options and context names can be tuned", *where)
        dims = {d for p in self.kernel.params if p.spec is not None for d in (p.spec.dims or ()) if isinstance(d, str)}
        self.key = list(key or ())
        # "num_layers" (the seeds' key): the length of the kernel's first list[tile.Tensor] parameter
        self._lists = [p.name for p in self.kernel.params if p.kind == "tensor_list"]
        unknown = [k for k in self.key if k not in dims and k not in params and k not in self.space
                   and not (k == "num_layers" and self._lists)]
        if unknown:
            raise CompilationError(f"autotune key {unknown} names no dim or parameter of '{self.__name__}' "
                                   f"(dims {sorted(dims)}, parameters {sorted(params)})", *where)
        in_space = [k for k in self.key if k in self.space]
        if in_space:
            raise CompilationError(f"autotune key {in_space} names what is being tuned; the key is what the "
                                   "choice depends on (dims, parameters)", *where)
        bad = [n for n in restore_value if n not in params or params[n].kind not in ("tensor", "auto")]
        if bad:
            raise CompilationError(f"autotune restore_value {bad} names no tensor parameter of '{self.__name__}'",
                                   *where)
        self.warmup, self.rep = int(warmup), max(1, int(rep))
        self.restore_value = list(restore_value)
        self.configs = explicit or [dict(zip(self.space, combo)) for combo in itertools.product(*self.space.values())]
        self.db = None
        self._best = {}  # (device, key json) -> config
        self.last_tuning = None  # what the last tuning run measured: [(config, ms or None, status, reason)]

    def __repr__(self):
        return f"<tessera autotuned kernel {self.__name__} ({len(self.configs)} configs)>"

    def __call__(self, *args, **kwargs):
        from ..frontend.kernel import _call_error
        raise _call_error(f"launch a kernel with a grid: {self.__name__}[grid](*args)")

    def __getitem__(self, grid):
        from ..frontend.kernel import GridLauncher
        return GridLauncher(self, grid)

    # -- configs -----------------------------------------------------------------------------
    def split(self, config):
        """(constexpr keyword arguments, launch options, context-only constexprs) of a config."""
        params = {p.name for p in self.kernel.params}
        kw, options, extra = {}, {}, {}
        for k, v in config.items():
            (kw if k in params else options if k in OPTIONS else extra)[k] = v
        return kw, options, extra

    def _bind(self, args, kwargs, config):
        kw, options, extra = self.split(config)
        values, opts = self.kernel.bind(args, {**kwargs, **kw})
        return values, {**opts, **options}, extra

    def _key(self, values, dim_values, target):
        out = {}
        for k in self.key:
            if k in dim_values:
                out[k] = dim_values[k]
            elif k == "num_layers" and k not in values:
                out[k] = len(values[self._lists[0]])
            else:
                v = values.get(k)
                out[k] = list(v.shape) if hasattr(v, "shape") and hasattr(v, "dtype") and getattr(v, "ndim", 0) else \
                    (len(v) if isinstance(v, (list, tuple)) else v.item() if hasattr(v, "item") else v)
        out["dtypes"] = {n: str(getattr(v, "dtype", type(v).__name__)) for n, v in values.items()
                         if hasattr(v, "dtype")}
        out["target"] = target
        return out

    def _candidates(self, given, target):
        """The configs a launch chooses from: keywords naming a space entry fix it."""
        out = []
        for c in self.configs:
            c = {**c, **given}
            if c not in out:
                out.append(c)
        return out

    # -- launch ------------------------------------------------------------------------------
    def run(self, grid, args, kwargs):
        config, ck, runtime_args, values = self.choose(args, kwargs, grid)
        self.kernel._launch(ck, self._grid(grid, ck, values), runtime_args)
        return ck

    def prepare(self, *args, grid=None, **kwargs):
        """As KernelFunction.prepare, with the tuned config (tuning first if needed, on `grid`)."""
        from ..frontend.kernel import GridLauncher
        return GridLauncher(self, grid).prepare(*args, **kwargs)

    def prepare_launch(self, grid, args, kwargs):
        _, ck, runtime_args, values = self.choose(args, kwargs, grid)
        return self.kernel.prepare_compiled(ck, self._grid(grid, ck, values) if grid is not None else None,
                                            runtime_args)

    def _grid(self, grid, ck, values):
        return self.kernel.resolve_grid(grid, ck, values)

    def _problem(self, args, kwargs):
        """(kwargs without the fixed space entries, those entries, target, key) of a launch."""
        kwargs = dict(kwargs)
        given = {k: kwargs.pop(k) for k in list(kwargs) if k in self.space}
        values, opts, extra = self._bind(args, kwargs, {**self.configs[0], **given})
        target = self.kernel.target_for(values)
        _, _, dim_values, _, _ = self.kernel.specialise(values, opts, target, extra)
        return kwargs, given, target, self._key(values, dim_values, target)

    def choose(self, args, kwargs, grid):
        """The config for these arguments (tuning now if needed): (config, compiled, runtime args, values)."""
        from ..compiler import COMPILER_ID
        kwargs, given, target, key = self._problem(args, kwargs)
        device = device_id(target)
        memo = (device, repr(sorted(key.items(), key=str)), repr(sorted(given.items())))
        config = self._best.get(memo)
        if config is None:
            configs = self._candidates(given, target)
            self.db = self.db or TuningDB()
            config = self.db.best(self.kernel._source_key, key, device, COMPILER_ID, configs)
            if config is None:
                if grid is None:
                    raise LaunchError(f"{self.__name__} is not tuned yet for these shapes: tuning launches it, so "
                                      "give the grid (kernel[grid].prepare(*args) or prepare(*args, grid=...))")
                config = self._tune(args, kwargs, target, key, device, grid, configs)
            self._best[memo] = config
        values, options, extra = self._bind(args, kwargs, config)
        ck, runtime_args = self.kernel.compile_for(values, options, target, extra)
        return config, ck, runtime_args, values

    def _tune(self, args, kwargs, target, key, device, grid, configs):
        from ..compiler import COMPILER_ID
        from . import recompile
        progress = _Progress(self.__name__, len(configs))
        candidates, results, failures = [], [], []
        with recompile.quiet():  # tuning compiles every config on purpose
            for config in configs:  # 1. compile everything; over-budget configs never run
                status, reason, compiled = self._compile(args, kwargs, config, target)
                if compiled is not None:
                    candidates.append((config, compiled))
                    continue
                if status == "failed":
                    failures.append(reason)
                    reason = str(reason)
                else:
                    results.append((config, None, status, reason))
                progress.step(config, f"{status}: {reason.splitlines()[0]}")
        if not candidates:
            if failures:  # the kernel itself does not compile: say why, as a plain launch would
                raise failures[0]
            raise OutOfResources(f"autotune: no config of '{self.__name__}' fits {target}: "
                                 + "; ".join(f"{_fmt(c)}: {r.splitlines()[0]}" for c, _, _, r in results),
                                 self.kernel.info.filename, self.kernel.info.line_offset + 1)
        names = [p.name for p in self.kernel.params]
        saved = [(v, _copy(v)) for v in (kwargs[n] if n in kwargs else args[names.index(n)]
                                         for n in self.restore_value if n in kwargs or names.index(n) < len(args))]
        best = None
        for config, (ck, runtime_args, values) in candidates:  # 2. time the survivors
            try:
                ms = self._time(ck, self.kernel.resolve_grid(grid, ck, values), runtime_args, target)
            except TesseraError as e:
                results.append((config, None, "failed", str(e)))
                progress.step(config, "failed")
                continue
            finally:
                for dst, src in saved:
                    _restore(dst, src)
            results.append((config, ms, "ok", None))
            progress.step(config, f"{ms:.4f} ms")
            if best is None or ms < best[1]:
                best = (config, ms)
        self.last_tuning = results
        # one transaction at the end: a run cut short leaves nothing that looks like a finished tuning
        self.db.record_many(self.kernel._source_key, self.__name__, key, device, COMPILER_ID, results)
        if best is None:
            raise LaunchError(f"autotune: every config of '{self.__name__}' failed to run")
        return best[0]

    def _compile(self, args, kwargs, config, target):
        """("ok", None, (ck, runtime args, values)) | ("rejected", why, None) | ("failed", exception, None)."""
        threads = 32 * int(config.get("num_warps", 4))
        if target != "cpu" and threads > MAX_THREADS:
            return "rejected", f"{threads} threads per program exceed the {MAX_THREADS}-thread limit", None
        try:
            values, options, extra = self._bind(args, kwargs, config)
            ck, runtime_args = self.kernel.compile_for(values, options, target, extra)
        except OutOfResources as e:
            return "rejected", e.msg, None
        except TesseraError as e:
            return "failed", e, None
        return "ok", None, (ck, runtime_args, values)

    def _time(self, ck, grid, runtime_args, target):
        launch = self.kernel._launch
        if target != "cpu" and knobs.backend() == "emu":
            # The PTX emulator (TESSERA_BACKEND=emu) times nothing: every config runs once with the checks
            # on, and the figure compared (and stored under device emu:<arch>) is the warp instructions it
            # issued, a proxy for GPU time.
            launch(ck, grid, runtime_args)
            return float(ck.runner().last_report.warp_instructions)
        for _ in range(self.warmup):
            launch(ck, grid, runtime_args)
        times = []
        if target == "cpu":
            for _ in range(self.rep):
                t0 = time.perf_counter()
                launch(ck, grid, runtime_args)
                times.append((time.perf_counter() - t0) * 1e3)
        else:
            import cupy as cp
            from .native import launch_stream
            stream = cp.cuda.ExternalStream(launch_stream(runtime_args))  # where the launcher puts the kernel
            start, end = cp.cuda.Event(), cp.cuda.Event()
            cp.cuda.runtime.deviceSynchronize()
            for _ in range(self.rep):
                start.record(stream)
                launch(ck, grid, runtime_args)
                end.record(stream)
                end.synchronize()
                times.append(cp.cuda.get_elapsed_time(start, end))
        return statistics.median(times)

    def compile(self, example_args, target, kwargs):
        """ts.compile of an autotuned kernel: nothing is timed (the target may not be here), so the
        config is the one the keywords name, else the first of the space that compiles and fits."""
        from . import recompile
        given = {k: kwargs.pop(k) for k in list(kwargs) if k in self.space}
        rejected, failures = [], []
        with recompile.quiet():
            for config in self._candidates(given, target):
                status, reason, compiled = self._compile(example_args, kwargs, config, target)
                if compiled is not None:
                    compiled[0].metadata["autotune_config"] = dict(config)
                    return compiled[0]
                if status == "failed":
                    failures.append(reason)
                else:
                    rejected.append(f"{_fmt(config)}: {reason.splitlines()[0]}")
        if failures:
            raise failures[0]
        raise OutOfResources(f"autotune: no config of '{self.__name__}' fits {target}: " + "; ".join(rejected),
                             self.kernel.info.filename, self.kernel.info.line_offset + 1)

    def tuned(self, args, kwargs=None):
        """What tuning measured for these arguments' key: [(config, ms, status, reason)], fastest first."""
        from ..compiler import COMPILER_ID
        _, _, target, key = self._problem(args, dict(kwargs or {}))
        return TuningDB().results(self.kernel._source_key, key, device_id(target), COMPILER_ID)


def autotune(space=None, key=None, warmup=1, rep=5, restore_value=(), configs=None):
    """The decorator factory behind `@ts.kernel.autotune(space=..., key=...)`; `configs=[{...}]`
    lists the configs instead of a product space. It decorates the plain function or a @ts.kernel."""
    def wrap(fn):
        return Autotuner(fn, space if space is not None else configs, key, warmup, rep, restore_value)
    return wrap
