"""Scalar element types of tessera and their NumPy / MLIR spellings."""
from __future__ import annotations

import numpy as np


class DType:
    __slots__ = ("name", "mlir", "bits", "kind", "_np")

    def __init__(self, name: str, mlir: str, bits: int, kind: str, np_name: str):
        self.name, self.mlir, self.bits, self.kind, self._np = name, mlir, bits, kind, np_name

    @property
    def is_float(self) -> bool:
        return self.kind == "f"

    @property
    def is_int(self) -> bool:
        return self.kind in ("i", "b")

    @property
    def itemsize(self) -> int:
        return max(1, self.bits // 8)

    def to_numpy(self) -> np.dtype:
        if self._np in ("bfloat16", "float8_e4m3fn", "float8_e5m2"):
            import ml_dtypes
            return np.dtype(getattr(ml_dtypes, self._np))
        return np.dtype(self._np)

    def __matmul__(self, other):
        # `ts.bf16 @ ts.accum(ts.f32)` in the seeds' annotations: storage dtype with an accumulation hint.
        return self

    def __repr__(self) -> str:
        return f"ts.{self.name}"

    def __reduce__(self):
        return (by_name, (self.name,))


f32 = DType("f32", "f32", 32, "f", "float32")
f16 = DType("f16", "f16", 16, "f", "float16")
bf16 = DType("bf16", "bf16", 16, "f", "bfloat16")
f64 = DType("f64", "f64", 64, "f", "float64")
fp8_e4m3 = DType("fp8_e4m3", "f8E4M3FN", 8, "f", "float8_e4m3fn")
fp8_e5m2 = DType("fp8_e5m2", "f8E5M2", 8, "f", "float8_e5m2")
i8 = DType("i8", "i8", 8, "i", "int8")
i16 = DType("i16", "i16", 16, "i", "int16")
i32 = DType("i32", "i32", 32, "i", "int32")
i64 = DType("i64", "i64", 64, "i", "int64")
bool_ = DType("bool", "i1", 1, "b", "bool")

ALL = [f32, f16, bf16, f64, fp8_e4m3, fp8_e5m2, i8, i16, i32, i64, bool_]
_BY_NAME = {d.name: d for d in ALL}
_BY_MLIR = {d.mlir: d for d in ALL}


def by_name(name: str) -> DType:
    return _BY_NAME[name]


def from_mlir(s: str) -> DType:
    return _BY_MLIR[s]


def from_numpy(dt) -> DType:
    dt = np.dtype(dt)
    for d in ALL:
        try:
            if d.to_numpy() == dt:
                return d
        except (ImportError, AttributeError):
            continue
    raise KeyError(str(dt))


def accum(d: DType) -> DType:
    """`ts.accum(ts.f32)`: an accumulation-precision hint in annotations (storage dtype is kept)."""
    return d


def promote(a: DType, b: DType) -> DType:
    """Result dtype of a binary op on two tiles (NumPy-like, bf16/f16 widen to f32 when mixed)."""
    if a is b:
        return a
    if a.is_float and b.is_float:
        if a.bits == b.bits:  # f16 with bf16
            return f32
        return a if a.bits > b.bits else b
    if a.is_float:
        return a
    if b.is_float:
        return b
    if a is bool_:
        return b
    if b is bool_:
        return a
    return a if a.bits >= b.bits else b
