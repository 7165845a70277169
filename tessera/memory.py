"""`ts.memory`: the seeds' data-movement hints for @ts.function bodies (seed 001's
`optimized_delta_memory_access`).

`with ts.memory.prefetch_scope():` groups hints; `ts.memory.prefetch(t, device="gpu", overlap="compute")`
checks its arguments (a traced tensor, a known device and overlap mode) and has no other effect: the
arrays a function receives are already where its kernels run (CuPy / torch arrays in device memory,
NumPy arrays on the CPU backend), and each kernel streams its inputs itself, so there is nothing to move
ahead of time. A bad argument is a located CompilationError; used outside a traced body, so is the hint.
"""
from __future__ import annotations

import contextlib

from .errors import CompilationError

DEVICES = ("gpu", "cpu")
OVERLAP = ("compute", "none")


def _where():
    from .frontend.function import user_frame
    return user_frame()


def _tracing():
    from .frontend import dsl
    return bool(dsl.TRACING)


@contextlib.contextmanager
def prefetch_scope():
    if not _tracing():
        raise CompilationError("ts.memory.prefetch_scope() is a hint for @ts.function bodies", *_where())
    yield


def prefetch(tensor, device="gpu", overlap="compute"):
    from .frontend.function import GraphTensor
    if not _tracing():
        raise CompilationError("ts.memory.prefetch() is a hint for @ts.function bodies", *_where())
    if not isinstance(tensor, GraphTensor) or tensor.shape is None:
        raise CompilationError(f"ts.memory.prefetch takes a tensor of the function, got {tensor!r}", *_where())
    if device not in DEVICES:
        raise CompilationError(f"ts.memory.prefetch: device must be one of {', '.join(DEVICES)}, got {device!r}",
                               *_where())
    if overlap not in OVERLAP:
        raise CompilationError(f"ts.memory.prefetch: overlap must be one of {', '.join(OVERLAP)}, got {overlap!r}",
                               *_where())
