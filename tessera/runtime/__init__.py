"""The MLIR-free runtime: cache, CuPy launcher, artifacts. Importing it never imports mlir."""
from .artifact import load  # noqa: F401
from .saved_plan import load_plan, SavedPlan  # noqa: F401
