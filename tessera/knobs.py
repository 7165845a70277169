"""Every environment knob tessera reads, in one place (DESIGN §2). Read at call time so tests can
monkeypatch the environment."""
from __future__ import annotations

import os
from pathlib import Path


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def debug() -> bool:
    """TESSERA_DEBUG=1: show internal tracebacks and MLIR diagnostics in full."""
    return _flag("TESSERA_DEBUG")


def cache_dir() -> Path:
    """TESSERA_CACHE_DIR: the on-disk compile cache (default: the user's cache dir)."""
    d = os.environ.get("TESSERA_CACHE_DIR")
    if d:
        return Path(d)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tessera"


def cache_enabled() -> bool:
    """TESSERA_CACHE=0 disables the on-disk cache (the in-memory one stays)."""
    return os.environ.get("TESSERA_CACHE", "1") != "0"


def dump_dir() -> Path | None:
    """TESSERA_DUMP_DIR: write every stage of every compile there."""
    d = os.environ.get("TESSERA_DUMP_DIR")
    return Path(d) if d else None


def backend() -> str | None:
    """TESSERA_BACKEND=cpu|cuda|emu forces the backend regardless of the arrays (emu: NumPy arrays,
    the NVIDIA code run in the PTX emulator with its checks, for the arch of TESSERA_EMU_ARCH)."""
    b = os.environ.get("TESSERA_BACKEND", "").strip().lower()
    return b or None


def log() -> set[str]:
    """TESSERA_LOG=stages,recompile,cache,...: what to report on stderr."""
    return {x.strip() for x in os.environ.get("TESSERA_LOG", "").split(",") if x.strip()}


def ptxas_path() -> str | None:
    """TESSERA_PTXAS: explicit ptxas binary."""
    return os.environ.get("TESSERA_PTXAS") or None


def cuda_home() -> str | None:
    for k in ("CUDA_HOME", "CUDA_PATH", "CUDA_ROOT"):
        if os.environ.get(k):
            return os.environ[k]
    return None


def launcher() -> str | None:
    """TESSERA_LAUNCHER=native|cupy: which GPU launcher runs kernels (default: native when
    tessera._native is built and libcuda loads, else CuPy)."""
    v = os.environ.get("TESSERA_LAUNCHER", "").strip().lower()
    return v or None


def persistent_ctas() -> int | None:
    """TESSERA_PERSISTENT_CTAS=N: the CTAs a persistent kernel (`persistent=True`) is launched on (default:
    the device's multiprocessor count; 132 in the PTX emulator)."""
    return _positive_int("TESSERA_PERSISTENT_CTAS")


def emu_arch() -> str:
    """TESSERA_EMU_ARCH=sm_80|sm_90a: the target TESSERA_BACKEND=emu compiles for (default sm_90a)."""
    return os.environ.get("TESSERA_EMU_ARCH", "").strip() or "sm_90a"


def opt_guard() -> bool:
    """TESSERA_OPT_GUARD=0: tessera-opt runs passes in its own process instead of a guarded child
    (for a debugger; an MLIR abort then kills tessera-opt)."""
    return os.environ.get("TESSERA_OPT_GUARD", "1") != "0"


def dist_timeout() -> float:
    """TESSERA_DIST_TIMEOUT=seconds (default 60): how long a tessera.dist rendezvous or collective waits for
    its peers before every waiting rank raises DistributedError naming the rank(s) that did not come."""
    v = os.environ.get("TESSERA_DIST_TIMEOUT", "").strip()
    if not v:
        return 60.0
    try:
        t = float(v)
    except ValueError:
        t = 0.0
    if t <= 0:
        from .errors import DistributedError
        raise DistributedError(f"TESSERA_DIST_TIMEOUT must be a positive number of seconds, got {v!r}")
    return t


def c_compiler() -> str | None:
    """TESSERA_CC (else CC): the C compiler that links a CPU kernel's object code into the shared object
    a saved plan loads (default: the first of cc, gcc, clang on PATH)."""
    return os.environ.get("TESSERA_CC") or os.environ.get("CC") or None


def cpu_threads() -> int:
    """TESSERA_CPU_THREADS=N: the most threads one CPU kernel launch splits its programs over (default: the CPUs
    this process may run on, divided among torchrun's LOCAL_WORLD_SIZE ranks on this host)."""
    n = _positive_int("TESSERA_CPU_THREADS")
    if n is not None:
        return n
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):   # not on Linux
        cpus = os.cpu_count() or 1
    # torchrun's ranks on one host share its CPUs (as its OMP_NUM_THREADS=1 default assumes): one share each
    try:
        local = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        local = 1
    return max(1, cpus // local)


def _positive_int(name: str) -> int | None:
    """The positive integer in environment variable `name`, None when unset; anything else a LaunchError."""
    v = os.environ.get(name, "").strip()
    if not v:
        return None
    try:
        n = int(v)
    except ValueError:
        n = 0
    if n < 1:
        from .errors import LaunchError
        raise LaunchError(f"{name} must be a positive integer, got {v!r}")
    return n
