"""The MLIR-free runtime: cache, CuPy launcher, artifacts. Importing it never imports mlir."""
from .artifact import load  # noqa: F401
