"""Seed 002's production layer: numerics policies, optimisation objects, compiled modules, deployment
packages, the production compiler, monitoring (GDNProductionMonitor) and benchmarks. No mlir import here."""
from .numerics import NumericsPolicy  # noqa: F401
from . import optimizations  # noqa: F401
from .gdn_compiler import GDNProductionCompiler  # noqa: F401
from .monitor import Alert, GDNProductionMonitor, robust_z_scores  # noqa: F401
