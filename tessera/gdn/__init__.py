"""The GDN library written with the DSL (seed components with NumPy references)."""
from .gating import gating_function_kernel, gating_function_reference  # noqa: F401
