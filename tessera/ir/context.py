"""A Context factory: every tessera context has the tile and ts dialects loaded."""
from __future__ import annotations

from mlir import ir

from . import compat
from .dialect import TILE_IRDL
from .ts_dialect import TS_IRDL


def load_dialects(ctx: "ir.Context") -> None:
    with ctx:
        compat.load_irdl(TILE_IRDL)
        compat.load_irdl(TS_IRDL)


def new_context() -> "ir.Context":
    ctx = ir.Context()
    # Errors go to diagnostic handlers: with the bindings' default capture, a pass that reports an
    # error but does not fail trips an assertion ("unhandled captured errors") and aborts Python.
    ctx.emit_error_diagnostics = True
    load_dialects(ctx)
    return ctx
