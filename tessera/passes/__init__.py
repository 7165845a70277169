"""Passes: one file per pass, one registry table, one pipeline parser.

Importing this package imports mlir (passes are only needed when compiling)."""
from .registry import PASSES, build_pass_manager, parse_pipeline  # noqa: F401
