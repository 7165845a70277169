"""Parameter annotations: `Tensor["B", "S", "D", ts.bf16]` and `ts.constexpr`."""
from __future__ import annotations

from .. import dtypes as _dt


class TensorSpec:
    """What `Tensor[...]` evaluates to: named (str) or static (int) dims and a dtype."""

    __slots__ = ("dims", "dtype")

    def __init__(self, dims, dtype):
        self.dims = tuple(dims)
        self.dtype = dtype

    @property
    def rank(self):
        return len(self.dims)

    def __repr__(self):
        inner = ", ".join([repr(d) for d in self.dims] + ([repr(self.dtype)] if self.dtype else []))
        return f"Tensor[{inner}]"


class _TensorMeta(type):
    def __getitem__(cls, item) -> TensorSpec:
        items = item if isinstance(item, tuple) else (item,)
        dims, dtype = [], None
        for x in items:
            if isinstance(x, _dt.DType):
                if dtype is not None:
                    _bad(f"Tensor[...] takes one dtype, got {dtype.name} and {x.name}")
                dtype = x
            elif isinstance(x, str) and _is_dtype_name(x):
                _bad(f"Tensor[...]: '{x}' is a dim name here; write the dtype as ts.{_dtype_spelling(x)}")
            elif isinstance(x, bool) or (isinstance(x, int) and x < 0):
                _bad(f"Tensor[...] dims are names or non-negative ints, got {x!r}")
            elif isinstance(x, (str, int)):
                dims.append(x)
            elif x is Ellipsis:
                dims.append(None)
            elif isinstance(x, tuple) and all(isinstance(d, (str, int)) for d in x):
                dims.extend(x)      # Tensor[(), ts.f32] (0-d), Tensor[("B", "D"), ts.f32]: the dims as a tuple
            else:
                _bad(f"Tensor[...] takes dim names, ints and one dtype, got {x!r}")
        return TensorSpec(dims, dtype)


def _bad(msg):
    from ..errors import CompilationError
    from .function import user_frame
    raise CompilationError(msg, *user_frame())


def _is_dtype_name(s):
    return _dtype_spelling(s) is not None


def _dtype_spelling(s):
    """The ts name of a dtype spelt as a string ('float32', 'f32', 'bfloat16'), else None."""
    for d in _dt.ALL:
        if s in (d.name, d._np):
            return d.name
    return None


class Tensor(metaclass=_TensorMeta):
    """`Tensor["M", "N", ts.f32]`: a global-memory tensor parameter (any strides). A bare
    `Tensor` annotation accepts any rank and dtype; `Tensor[(), ts.f32]` is a 0-d tensor (the dims may be
    given as one tuple)."""


class constexpr:
    """Annotation of compile-time constant parameters: `BLOCK: ts.constexpr = 128`."""

    def __init__(self, value=None):
        self.value = value
