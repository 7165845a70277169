"""The MLIR-free runtime: cache, CuPy launcher, artifacts, saved plans. Importing it never imports mlir."""
from .artifact import load
from .saved_plan import load_plan, SavedPlan

__all__ = ["load", "load_plan", "SavedPlan"]
