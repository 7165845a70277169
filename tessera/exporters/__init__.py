"""Exporting compiled tessera graphs to other formats (docs/export.md).

`export_onnx(compiled, path, ...)` writes a `ts.compile`d `@ts.function` as an ONNX model. The
exporter imports `onnx` and `mlir`, so it is loaded on first call: `import tessera` and
`import tessera.exporters` import neither.
"""
from __future__ import annotations


def export_onnx(compiled, path=None, **options):
    """See tessera.exporters.onnx.export_onnx (imported here on first call, with onnx)."""
    from .onnx import export_onnx as _export_onnx
    return _export_onnx(compiled, path, **options)


__all__ = ["export_onnx"]
