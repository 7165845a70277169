"""The one exception hierarchy of tessera (DESIGN §9).

User-facing errors carry the user's source position; their ``str()`` is a compiler-style
message (``file:line:col: error: ...``, the source line and a caret) so a traceback is not needed.
"""
from __future__ import annotations

import linecache


class TesseraError(Exception):
    """Base class of every error tessera raises on purpose."""


def _format(msg: str, filename: str | None, line: int | None, col: int | None,
            source_line: str | None = None, kind: str = "error") -> str:
    if filename is None or line is None:
        return msg
    col = col or 1
    head = f"{filename}:{line}:{col}: {kind}: {msg}"
    text = source_line if source_line is not None else linecache.getline(filename, line)
    text = text.rstrip("\n")
    if not text:
        return head
    return f"{head}\n{text}\n{' ' * (col - 1)}^"


class LocatedError(TesseraError):
    """An error that points at a place in the user's Python source."""

    def __init__(self, msg: str, filename: str | None = None, line: int | None = None,
                 col: int | None = None, source_line: str | None = None):
        self.msg = msg
        self.filename = filename
        self.line = line
        self.col = col
        super().__init__(_format(msg, filename, line, col, source_line))


class CompilationError(LocatedError):
    """The kernel or function cannot be compiled as written (unsupported construct,
    undefined name, dtype mismatch, wrong argument count, ...)."""


class GraphBreak(CompilationError):
    """A @ts.function body that cannot be one graph (Python branches on a tensor's value, returns a dict, calls
    an eager-only op). A call runs such a body eagerly (tessera.frontend.eager); `ts.compile` of it raises this."""


class DTypeError(CompilationError):
    """Operands or arguments have dtypes that cannot be combined."""


class ShapeError(LocatedError):
    """Named dims disagree between arguments at launch (or an argument's rank is wrong), located at the
    launching line. Tile shapes that do not fit inside a kernel body are CompilationErrors."""


class OutOfResources(LocatedError):
    """Shared memory or registers exceed the target's budget."""

    def __init__(self, msg: str, filename=None, line=None, col=None, *, required=None,
                 budget=None, resource="shared memory", suggestion=None):
        self.required = required
        self.budget = budget
        self.resource = resource
        self.suggestion = suggestion
        super().__init__(msg, filename, line, col)


class BackendUnavailable(LocatedError):
    """A backend (GPU, ptxas, the MLIR wheels) is missing; the message says how to fix it."""


class UnknownName(CompilationError, AttributeError):
    """`ts.X` / `ts.ops.X` / `tile.X` names nothing tessera has (an AttributeError too, so hasattr works)."""


class LaunchError(LocatedError):
    """Bad launch: wrong grid, wrong number or kind of arguments, a read-only output. Located at the
    launching line where the launch went through the kernel (`kernel[grid](...)`, `prepare`)."""


class PipelineError(TesseraError):
    """A pass pipeline string that cannot be parsed, names an unknown pass or gives a pass a bad option."""


class EmulatorError(TesseraError):
    """The PTX emulator cannot run this PTX: an opcode or form it does not implement (named with
    its PTX line), a malformed statement, or an argument that does not fit the kernel's ABI."""


class SanitizerError(TesseraError):
    """The PTX emulator's checks found errors (DESIGN §11). `.kind` is the first finding's kind
    (`global-out-of-bounds`, `shared-race`, ...); `.findings` lists them all (kernel, PTX line, CTA,
    thread, detail); `.report` is the EmulationReport with the counters."""

    def __init__(self, findings, report=None):
        self.findings = list(findings)
        self.report = report
        self.kind = self.findings[0].kind if self.findings else None
        kinds = sorted({f.kind for f in self.findings})
        head = f"the emulator's checks failed ({', '.join(kinds)})"
        shown = "\n".join(f"  {f}" for f in self.findings[:5])
        more = f"\n  ... and {len(self.findings) - 5} more" if len(self.findings) > 5 else ""
        super().__init__(f"{head}:\n{shown}{more}")


class DistributedError(TesseraError):
    """A distributed run went wrong (tessera.dist): a mesh that does not fit the processes launched, a
    collective whose ranks disagree on shapes, or a peer rank that failed, died or hung. `.ranks` names the
    ranks at fault (global ranks; empty when not known), so every survivor can say which peer to look at."""

    def __init__(self, msg: str, ranks=()):
        self.ranks = tuple(ranks)
        super().__init__(msg)


class ServeError(TesseraError):
    """A request the inference server (tessera.serve) refuses or cannot answer. `.field` names the request
    field at fault (None when the request as a whole is refused: the server is draining, its queue is full, the
    model failed); `.status` is the HTTP status the reply carries (4xx for the client's fault, 5xx for ours)."""

    def __init__(self, msg: str, field: str | None = None, status: int = 422):
        self.field = field
        self.status = status
        super().__init__(msg)


def located(cls, msg, **kwargs):
    """`cls(msg)` located at the first caller frame outside the tessera package (the user's line)."""
    from .frontend.function import user_frame
    return cls(msg, *user_frame(), **kwargs)
