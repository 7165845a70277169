"""tessera.serve: the HTTP inference server of a deployed model (FastAPI on uvicorn), seed 002's
GDNInferenceServer. `import tessera.serve` imports neither fastapi, uvicorn nor prometheus_client: `create_app`
loads them when first used. See docs/serving.md."""
from __future__ import annotations

from .batching import Batcher, BatchingOptions, BatchPolicy  # NumPy and asyncio only

__all__ = ["Batcher", "BatchingOptions", "BatchPolicy", "create_app", "serve_main"]


def __getattr__(name):
    if name in ("create_app", "parse_infer_body", "warm_up"):
        from . import app
        return getattr(app, name)
    if name in ("serve_main", "add_arguments", "run"):
        from . import cli
        return getattr(cli, name)
    raise AttributeError(f"module 'tessera.serve' has no attribute {name!r}")
