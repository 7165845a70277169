"""`ts.NumericsPolicy`: the dtypes of a compiled model by role, and its loss scaling.

Roles are given to parameters by name (the attribute path of a ts.Module): a name containing "gate" is a
gating parameter (gating_dtype), one containing "delta" a delta-network parameter (delta_dtype), any other a
weight (weight_dtype); gating wins over delta ("delta_networks.0.gate_network.0.weight" is gating).
`ts.compile(module, config=CompilationConfig(numerics_policy=p))` compiles with the parameters cast per
role (the module's own arrays are left as they are). activation_dtype is what floating-point inputs are
cast to; activations inside the graph follow from the operands (an op of two dtypes computes in the wider).
accumulation_dtype must be f32: tessera's gemms and reductions accumulate in f32 whatever they read.
gradient_scaling / loss_scaling make the `ts.optim.LossScaler` of `loss_scaler()` for training."""
from __future__ import annotations

import numpy as np

from .. import dtypes as dt
from ..errors import CompilationError, located

_FLOATS = ("f32", "f16", "bf16", "fp8_e4m3", "fp8_e5m2", "f64")


def _dtype(value, field):
    if value is None:
        return None
    d = value if isinstance(value, dt.DType) else dt.by_name(str(value)) if str(value) in _FLOATS else None
    if d is None or d.name not in _FLOATS:
        raise located(CompilationError, f"ts.NumericsPolicy: {field} must be one of ts.{', ts.'.join(_FLOATS)}, got {value!r}")
    return d


class NumericsPolicy:
    def __init__(self, activation_dtype=dt.f32, weight_dtype=dt.f32, accumulation_dtype=dt.f32, gating_dtype=None,
                 delta_dtype=None, gradient_scaling=False, loss_scaling=None):
        self.activation_dtype = _dtype(activation_dtype, "activation_dtype")
        self.weight_dtype = _dtype(weight_dtype, "weight_dtype")
        self.accumulation_dtype = _dtype(accumulation_dtype, "accumulation_dtype")
        if self.accumulation_dtype is not dt.f32:
            raise located(CompilationError, "ts.NumericsPolicy: accumulation_dtype must be ts.f32 (tessera's gemms and "
                                   f"reductions accumulate in f32), got {accumulation_dtype!r}")
        self.gating_dtype = _dtype(gating_dtype, "gating_dtype") or self.weight_dtype
        self.delta_dtype = _dtype(delta_dtype, "delta_dtype") or self.weight_dtype
        if loss_scaling is not None and not (isinstance(loss_scaling, (int, float)) and loss_scaling > 0):
            raise located(CompilationError, f"ts.NumericsPolicy: loss_scaling must be a positive number, got {loss_scaling!r}")
        self.gradient_scaling = bool(gradient_scaling)
        self.loss_scaling = None if loss_scaling is None else float(loss_scaling)

    @classmethod
    def mixed_bf16(cls):
        """bf16 weights and activations, f32 accumulation (CompilationConfig(enable_mixed_precision=True))."""
        return cls(activation_dtype=dt.bf16, weight_dtype=dt.bf16)

    def role(self, name: str) -> str:
        lower = name.lower()
        return "gating" if "gate" in lower else "delta" if "delta" in lower else "weight"

    def dtype_for(self, name: str) -> dt.DType:
        return {"gating": self.gating_dtype, "delta": self.delta_dtype, "weight": self.weight_dtype}[self.role(name)]

    def cast_parameters(self, named_arrays):
        """{name: array cast to its role's dtype} (the array itself where the dtype already matches)."""
        out = {}
        for name, a in named_arrays.items():
            target = self.dtype_for(name).to_numpy()
            out[name] = a if a.dtype == target else a.astype(np.float32).astype(target)
        return out

    def cast_input(self, a):
        """A floating-point input cast to activation_dtype; integer and bool inputs as they are."""
        a = np.asarray(a)
        if a.dtype.kind == "f" or a.dtype.name == "bfloat16":
            target = self.activation_dtype.to_numpy()
            return a if a.dtype == target else a.astype(target)
        return a

    def loss_scaler(self):
        """A ts.optim.LossScaler starting at loss_scaling (2**15 if unset), or None without gradient_scaling."""
        if not self.gradient_scaling:
            return None
        from ..optim import LossScaler
        return LossScaler(init_scale=self.loss_scaling or 2.0 ** 15)

    def to_dict(self):
        return {"activation_dtype": self.activation_dtype.name, "weight_dtype": self.weight_dtype.name,
                "accumulation_dtype": self.accumulation_dtype.name, "gating_dtype": self.gating_dtype.name,
                "delta_dtype": self.delta_dtype.name, "gradient_scaling": self.gradient_scaling,
                "loss_scaling": self.loss_scaling}

    @classmethod
    def from_dict(cls, d):
        return cls(**d)

    def __eq__(self, other):
        return isinstance(other, NumericsPolicy) and self.to_dict() == other.to_dict()

    def __repr__(self):
        return "NumericsPolicy(" + ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items()) + ")"
