"""`ts.nn`: modules (`ts.Module`) and the layers seed 002 uses. No mlir import here: a module's forward is
traced when it is first called or compiled."""
from .module import Module, ModuleList, Parameter, Sequential  # noqa: F401
from .layers import Embedding, Linear, MLP, MultiHeadAttention, RMSNorm, Sigmoid, SiLU  # noqa: F401
from . import functional  # noqa: F401
