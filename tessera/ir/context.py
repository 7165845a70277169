"""A Context factory: every tessera context has the tile (and later ts) dialects loaded."""
from __future__ import annotations

from mlir import ir

from . import compat
from .dialect import TILE_IRDL


def load_dialects(ctx: "ir.Context") -> None:
    with ctx:
        compat.load_irdl(TILE_IRDL)


def new_context() -> "ir.Context":
    ctx = ir.Context()
    load_dialects(ctx)
    return ctx
