"""The compile loop: frontend ("tile" stage), then the backend's ordered stage table. One loop
runs every stage and caches (memory + disk), dumps (TESSERA_DUMP_DIR) and reports (TESSERA_LOG=stages)
each. CompiledKernel is what a compile returns."""
from __future__ import annotations

import re
import sys
import time

from . import knobs
from .errors import CompilationError, TesseraError
from .runtime import cache

VERSION = "0.1.0"
MLIR_PIN = "xtc-mlir-python-bindings==22.1.8.4"
COMPILER_ID = f"tessera-{VERSION}/{MLIR_PIN}"
# The code that turns a kernel into machine code: an edit to any of it (a pass, a pipeline) must miss the
# disk cache, as a version bump does, or a checkout runs kernels compiled by the code it replaced
CODEGEN_SOURCES = ("compiler.py", "frontend", "ir", "passes", "backends")


def codegen_fingerprint() -> str:
    """sha256 over the source of CODEGEN_SOURCES (read once per process)."""
    global _FINGERPRINT
    if _FINGERPRINT is None:
        import hashlib
        from pathlib import Path
        root, h = Path(__file__).parent, hashlib.sha256()
        for part in CODEGEN_SOURCES:
            p = root / part
            for f in sorted(p.rglob("*.py")) if p.is_dir() else [p]:
                h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes())
        _FINGERPRINT = h.hexdigest()[:16]
    return _FINGERPRINT


_FINGERPRINT = None

TARGETS = ("cpu", "sm_80", "sm_90a")


class CompiledKernel:
    """A kernel compiled for one specialisation and target.

    `.asm[stage]` holds each stage's text; `.metadata` the arg ABI, specialised dims, timings.
    `ck[grid](*args)` launches it."""

    def __init__(self, name, target, asm, metadata, runner=None, kernel=None):
        self.name, self.target, self.asm, self.metadata = name, target, asm, metadata
        self._runner = runner
        self._kernel = kernel

    def __getitem__(self, grid):
        def launch(*args, **kwargs):
            from .runtime import torch_interop
            (args, kwargs), _ = torch_interop.unwrap((args, kwargs))   # CPU tensors: written through views
            return self._kernel._launch_compiled(self, grid, args, kwargs)
        return launch

    def runner(self):
        """The launcher: the CPU runner, else the native launcher (or CuPy's where it cannot load)."""
        if self._runner is None:
            if knobs.backend() == "emu":
                if getattr(self, "_emu_runner", None) is None:
                    from .runtime.emulator import EmulatorLauncher
                    self._emu_runner = EmulatorLauncher(self)
                return self._emu_runner
            from .runtime.prepared import launcher_for
            self._runner = launcher_for(self.asm["cubin"], self.name, self.metadata)
        return self._runner

    def emulate(self, grid, *args, checks=True, ptx=None, **kwargs):
        """Run this kernel's PTX in tessera's PTX emulator (DESIGN §11) on NumPy arrays: outputs land
        in the arrays, the result is an EmulationReport (counters, findings); with `checks` on, a
        finding raises ts.SanitizerError. `ptx=` runs another PTX text for the same entry."""
        from .runtime.emulator import emulate
        try:
            return emulate(self, grid, *args, checks=checks, ptx=ptx, **kwargs)
        except TesseraError as e:
            if self._kernel is not None:
                from .frontend.kernel import _reraise
                _reraise(e)
            raise

    def launch(self, grid, args):
        self.runner().launch(grid, args)

    def prepare_runtime(self, grid, args):
        """A PreparedLaunch over already-checked runtime arguments (see KernelFunction.prepare)."""
        from .runtime.prepared import PreparedLaunch
        return PreparedLaunch(self.name, self.runner(), args, grid)

    def prepare(self, *args, grid=None, **kwargs):
        """`h = ck.prepare(*args, grid=g)`: the arguments checked and packed once; `h()` launches."""
        if self._kernel is None:
            raise TesseraError("this compiled kernel has no kernel to check arguments against")
        try:
            values, runtime_args = self._kernel.bind_compiled(self, args, kwargs)
            from .frontend.kernel import _check_outputs
            _check_outputs(self, runtime_args)
            if grid is not None:
                from .frontend.kernel import _check_grid
                grid = _check_grid(self._kernel.resolve_grid(grid, self, values), self.target)
            return self.prepare_runtime(grid, runtime_args)
        except TesseraError as e:
            from .frontend.kernel import _reraise
            _reraise(e)

    def save(self, directory):
        """Write an artifact that `tessera.runtime.load` runs without MLIR: the cubin (and every stage) for a
        GPU target, a shared object linked by the system C compiler for "cpu"."""
        if self.target == "cpu":
            from .backends.cpu.aot import save_cpu_artifact
            return save_cpu_artifact(self, directory)
        from .runtime.artifact import save
        return save(self, directory)

    def __repr__(self):
        return f"<CompiledKernel {self.name} target={self.target} stages={list(self.asm)}>"


def _written_args(module):
    """The kernel arguments a tile.store writes (indices into the runtime arguments; a list of tensors
    when it writes any element, `outs[i]`): launchers refuse read-only arrays there
    (runtime.prepared.check_writable)."""
    from mlir import ir
    out = set()

    def visit(op):
        if op.name == "tile.store":
            dst = op.operands[0]
            view = dst.owner
            if not isinstance(view, ir.Block) and view.name == "tile.view":
                base = view.operands[0]
                if not isinstance(base.owner, ir.Block) and base.owner.name == "tile.list_get":
                    base = base.owner.operands[0]
                if isinstance(base.owner, ir.Block):
                    out.add(ir.BlockArgument(base).arg_number)
        return ir.WalkResult.ADVANCE
    module.operation.walk(visit)
    return sorted(out)


def _stages(target, options):
    if target == "cpu":
        from .backends import cpu
        return cpu.STAGES
    if target in ("sm_80", "sm_90a"):
        from .backends.nvidia.stages import stages
        return stages(target, int(options.get("num_warps", 4)), int(options.get("num_stages", 3)),
                      bool(options.get("warp_specialize", False)), bool(options.get("persistent", False)))
    raise TesseraError(f"unknown target '{target}' (known: {', '.join(TARGETS)})")


class StageState:
    """What a stage action sees: the module, the texts of earlier stages, the metadata."""

    def __init__(self, module, asm, meta):
        self.module, self.asm, self.meta = module, asm, meta

    def run_pipeline(self, pipeline):
        run_pipeline(self.module, pipeline)


def _collect_errors(ctx):
    errors = []

    def handler(d):
        if str(d.severity).endswith("ERROR"):
            errors.append((d.location, d.message))
        return True
    return errors, ctx.attach_diagnostic_handler(handler)


def _report(name, stage, seconds):
    if "stages" in knobs.log():
        print(f"[tessera] {name}: stage {stage} {seconds * 1e3:.1f} ms", file=sys.stderr)


def _dump(name, key, stage, text):
    d = knobs.dump_dir()
    if d is None:
        return
    d.mkdir(parents=True, exist_ok=True)
    data = text if isinstance(text, bytes) else text.encode()
    (d / f"{name}-{key[:10]}.{stage}").write_bytes(data)


_LOC_RE = re.compile(r'loc\("([^"]+)":(\d+):(\d+)\)|^([^\s:]+\.py):(\d+):(\d+)')


def mlir_error_to_tessera(e, default_file=None):
    """An MLIR diagnostic → CompilationError at the user's line where the location says one."""
    text = str(e)
    m = re.search(r'([^\s"]+\.py):(\d+):(\d+):\s*error:\s*(.*)', text)
    if m:
        return CompilationError(f"the compiler rejected this: {m.group(4).strip()}", m.group(1), int(m.group(2)), int(m.group(3)))
    return CompilationError("internal compiler error (set TESSERA_DEBUG=1 for details): " + text.strip().splitlines()[0], default_file)


def run_pipeline(module, pipeline: str):
    """Run a pipeline; any error diagnostic (even from a pass that then succeeds) becomes a
    CompilationError at the location it names."""
    from mlir import ir
    from .ir.locations import error_at
    from .passes import build_pass_manager
    pm = build_pass_manager(pipeline)
    errors, h = _collect_errors(module.context)
    try:
        try:
            pm.run(module.operation)
        except ir.MLIRError:
            if not errors:
                raise
    finally:
        h.detach()
    if errors:
        loc, msg = errors[0]
        raise error_at(loc, f"the compiler rejected this: {msg}")


def _verify_tile(ctx, module):
    """The tile verifier's rules on what the frontend built; a violation is our bug, reported at
    the user's line it came from."""
    from .ir import verify_tile
    from .ir.locations import error_at
    diags = []

    def handler(d):
        diags.append((d.location, d.message))
        return True
    h = ctx.attach_diagnostic_handler(handler)
    try:
        ok = verify_tile(module.operation)
    finally:
        h.detach()
    if not ok:
        loc, msg = diags[0] if diags else (None, "invalid tile IR")
        raise error_at(loc, f"internal compiler error: the frontend produced invalid tile IR: {msg}")


def compile_spec(kernel, spec, target, key) -> CompiledKernel:
    """Compile one specialisation (no cache lookup here)."""
    from mlir import ir
    from .ir import new_context
    from .frontend.codegen import KernelGen
    info = kernel.info
    asm, timings = {}, {}
    with new_context() as ctx, ir.Location.unknown():
        module = ir.Module.create()
        t0 = time.perf_counter()
        gen = KernelGen(info, spec)
        gen.generate(module)
        try:
            module.operation.verify()
        except ir.MLIRError as e:  # the frontend built invalid IR: our bug, reported at the user's line
            raise mlir_error_to_tessera(e, info.filename) from (e if knobs.debug() else None)
        _verify_tile(ctx, module)
        asm["tile"] = module.operation.get_asm(enable_debug_info=True)
        timings["tile"] = time.perf_counter() - t0
        _report(info.name, "tile", timings["tile"])
        _dump(info.name, key, "tile", asm["tile"])
        meta = {"name": info.name, "target": target, "args": spec.arg_abi(), "writes": _written_args(module),
                "spec_dims": sorted(spec.spec_dims),
                "num_warps": spec.options.get("num_warps", 4), "compile_seconds": timings,
                "compiler": COMPILER_ID, "cluster": _cluster(spec.options, target, info)}
        state = StageState(module, asm, meta)
        state.where = (info.filename, info.line_offset + 1)
        for stage, action in _stages(target, spec.options):
            t0 = time.perf_counter()
            try:
                if isinstance(action, str):
                    state.run_pipeline(action)
                    asm[stage] = str(module)
                else:
                    asm[stage] = action(state)
            except ir.MLIRError as e:
                raise mlir_error_to_tessera(e, info.filename) from (e if knobs.debug() else None)
            except TesseraError:
                raise
            except Exception as e:  # noqa: BLE001 - a bug of ours: say where, keep the trace for TESSERA_DEBUG
                if knobs.debug():
                    raise
                raise CompilationError(f"internal compiler error in stage '{stage}': {type(e).__name__}: {e} "
                                       "(set TESSERA_DEBUG=1 for the traceback)", info.filename,
                                       info.line_offset + 1) from None
            timings[stage] = time.perf_counter() - t0
            _report(info.name, stage, timings[stage])
            _dump(info.name, key, stage, asm[stage])
        t0 = time.perf_counter()
        runner = _make_runner(target, module, info.name, meta)
        if runner is not None:  # the ExecutionEngine's LLVM optimisation and code generation: a cost of its own
            timings["jit"] = time.perf_counter() - t0
            _report(info.name, "jit", timings["jit"])
        ck = CompiledKernel(info.name, target, asm, meta, runner, kernel)
        ck._context = ctx
    cache.store(key, {f"kernel.{s}": (t if isinstance(t, bytes) else t.encode()) for s, t in asm.items()}, meta)
    return ck


MAX_CLUSTER = 16  # sm_90a: 8 portably, 16 with the non-portable cluster size opt-in


def _cluster(options, target, info):
    """`num_ctas=N`: launch thread-block clusters of N programs along grid axis 0 (sm_90a)."""
    n = options.get("num_ctas", 1)
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_CLUSTER:
        raise CompilationError(f"num_ctas must be an int from 1 to {MAX_CLUSTER}, got {n!r}", info.filename,
                               info.line_offset + 1)
    if n > 1 and target == "sm_80":
        raise CompilationError("num_ctas > 1 (thread-block clusters) needs sm_90a", info.filename, info.line_offset + 1)
    return [n, 1, 1]


def _make_runner(target, module, name, meta):
    if target == "cpu":
        from .backends.cpu.runner import CpuRunner
        return CpuRunner(module, name, meta["args"])
    return None  # GPU kernels get their launcher from the MLIR-free runtime at the first launch


def load_cached(kernel, key, target):
    hit = cache.load(key)
    if hit is None:
        return None
    files, meta = hit
    # the key matched, so only an entry forged to match gets here; a miss all the same, never a crash
    if meta.get("name") != kernel.info.name or meta.get("target") != target or \
            not all(name.startswith("kernel.") for name in files):
        cache.evict(key, "foreign")
        return None
    try:
        asm = {name.split(".", 1)[1]: (data if name.endswith(".cubin") else data.decode())
               for name, data in files.items()}
    except UnicodeDecodeError:
        cache.evict(key)
        return None
    if target != "cpu":
        if "cubin" not in asm:
            return None
        ck = CompiledKernel(meta["name"], target, asm, meta, None, kernel)
        ck.metadata["from_disk_cache"] = True
        return ck
    last = "llvm"
    if last not in asm:
        return None
    from mlir import ir  # only the CPU path needs mlir to run a cached kernel (it JIT-compiles the LLVM IR)
    from .ir import new_context
    ctx = new_context()
    with ctx, ir.Location.unknown():
        try:
            module = ir.Module.parse(asm[last])
        except ir.MLIRError:
            cache.evict(key)
            return None
        from .runtime.cpu_launch import range_entry
        if range_entry(meta["name"]) not in ir.SymbolTable(module.operation):
            # no entry to split a launch over threads (a module an older tessera cached): compiled again
            cache.evict(key, "outdated")
            return None
        runner = _make_runner(target, module, meta["name"], meta)
    ck = CompiledKernel(meta["name"], target, asm, meta, runner, kernel)
    ck._context = ctx
    ck.metadata["from_disk_cache"] = True
    return ck
