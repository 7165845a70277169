"""Values, scope, locations and errors shared by the visitor mixins."""
from __future__ import annotations

import ast
from dataclasses import dataclass, field

from mlir import ir

from ... import dtypes as dt
from ...errors import CompilationError

INDEX = dt.DType("index", "index", 64, "i", "int64")
MAX_TILE_ELEMENTS = 1 << 28   # a tile or view beyond this is a mistake, not a kernel (shared buffers: the budgets)
MAX_UNROLL = 1 << 14          # iterations of an unrolled loop (tile.static_range, `for x in <sequence>`)


class NeedSpecialisation(Exception):
    """A named dim was used where a static size is needed: compile again with it specialised."""

    def __init__(self, dims):
        super().__init__(sorted(dims))
        self.dims = frozenset(dims)


@dataclass
class Val:
    """A runtime value of the kernel being compiled.

    kind: "scalar" | "tile" (ranked tensor) | "tensor" (global memref parameter) |
          "view" (a window on a global tensor, materialised at its use) | "shared" (smem buffer) |
          "list" (a list[tile.Tensor] parameter: v is its table, shape and dtype its elements') |
          "sview" (an indexed shared buffer, `buf[:, j]`: base and offsets, seed_ops.index_spec)
    """
    kind: str
    v: object = None               # ir.Value (None for views)
    dtype: dt.DType = None
    shape: tuple = ()               # tile/shared/view: static ints; tensor: dim names or ints
    dims: frozenset = frozenset()   # named dims a scalar derives from (for specialisation)
    name: str = ""                  # parameter name of a tensor
    length: int = 0                 # lists only: the number of tensors (compile-time)
    # views only
    base: "Val" = None
    offsets: list = field(default_factory=list)   # per base dim: int | Val(scalar)
    sizes: list = field(default_factory=list)     # per base dim: int
    squeeze: list = field(default_factory=list)   # per base dim: bool

    @property
    def rank(self):
        return len(self.shape)

    def __repr__(self):
        return f"<{self.kind} {self.dtype} {self.shape}>"


class ShapeProxy:
    """`x.shape` of a global tensor: indexing gives a static int or a runtime dim."""

    def __init__(self, gen, tensor: Val):
        self.gen, self.tensor = gen, tensor

    def __getitem__(self, i):
        return self.gen.tensor_dim(self.tensor, i)

    def __len__(self):
        return len(self.tensor.shape)


class KernelContext:
    """What `tile.context()` returns: named dims and constexpr / tuning parameters."""

    def __init__(self, gen):
        self._gen = gen


def mlir_type(d: dt.DType) -> "ir.Type":
    if d is INDEX:
        return ir.IndexType.get()
    if d.is_float:
        return {"f32": ir.F32Type.get, "f16": ir.F16Type.get, "bf16": ir.BF16Type.get,
                "f64": ir.F64Type.get}.get(d.mlir, lambda: ir.Type.parse(d.mlir))()
    return ir.IntegerType.get_signless(d.bits)


def dtype_of(t: "ir.Type") -> dt.DType:
    s = str(t)
    if s == "index":
        return INDEX
    return dt.from_mlir(s)


class Base:
    """Scope, locations, errors."""

    def __init__(self, filename: str, line_offset: int, col_offset: int, source_lines):
        self.filename = filename
        self.line_offset = line_offset
        self.col_offset = col_offset
        self.source_lines = source_lines
        self.scope: dict[str, object] = {}
        self._node_stack: list[ast.AST] = []

    # -- positions -------------------------------------------------------------------------
    def pos(self, node):
        line = getattr(node, "lineno", None)
        if line is None:
            return None, None, None
        src_line = self.source_lines[line - 1] if 0 < line <= len(self.source_lines) else None
        return line + self.line_offset, node.col_offset + self.col_offset + 1, src_line

    def loc(self, node) -> "ir.Location":
        line, col, _ = self.pos(node)
        if line is None:
            return ir.Location.file(self.filename, self.line_offset + 1, 1)
        return ir.Location.file(self.filename, line, col)

    def error(self, node, msg, cls=CompilationError):
        node = node if node is not None and hasattr(node, "lineno") else (self._node_stack[-1] if self._node_stack else None)
        line, col, src = self.pos(node) if node is not None else (None, None, None)
        if src is not None:
            src = " " * self.col_offset + src
        raise cls(msg, self.filename, line, col, src)

    def check_tile_size(self, shape, node, what):
        n = 1
        for d in shape:
            n *= int(d)
        if n > MAX_TILE_ELEMENTS:
            self.error(node, f"{what} of shape {list(shape)} has {n} elements, more than a kernel can hold "
                             f"({MAX_TILE_ELEMENTS}); use smaller blocks and a loop")

    def current_node(self):
        return self._node_stack[-1] if self._node_stack else None

    # -- scope -----------------------------------------------------------------------------
    def lookup(self, name, node):
        if name in self.scope:
            return self.scope[name]
        if name in self.closure:
            return self.closure[name]
        if name in self.globals:
            return self.globals[name]
        import builtins
        if hasattr(builtins, name):
            return getattr(builtins, name)
        self.error(node, f"undefined name '{name}'")
