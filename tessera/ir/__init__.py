"""Tessera IR: contexts with the tessera dialects loaded, typed builders, verifier.

Importing this package imports mlir; `import tessera` does not import it (it is loaded lazily).
"""
from .context import new_context, load_dialects  # noqa: F401
from .verify import verify_tile  # noqa: F401,E402
