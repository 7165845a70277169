"""The names kernels and graph functions call (`tile.load`, `ts.ops.exp`, `ts.add`, ...). Inside a
@ts.kernel they are markers the code generator recognises by identity; while a @ts.function is
being traced, calling one records the graph operation (`tessera.graph.ops`); from plain
Python it is an error."""
from __future__ import annotations

from ..errors import TesseraError


class Builtin:
    __slots__ = ("name", "__dict__")

    def __init__(self, name: str, **attrs):
        self.name = name
        self.__dict__.update(attrs)

    def __call__(self, *args, **kwargs):
        if TRACING:
            from ..graph import ops as graph_ops  # imports mlir: only while tracing
            impl = graph_ops.IMPLS.get(self.name)
            if impl is None:
                raise TesseraError(f"`{self.name}` is not supported in @ts.function bodies yet")
            return impl(*graph_ops.constants(args), **graph_ops.constants(kwargs))
        if EAGER:
            from . import eager   # a body running op by op (graph break)
            return eager.run(self.name, args, kwargs)
        from ..errors import CompilationError
        from .function import user_frame
        raise CompilationError(f"`{self.name}` can only be used inside a @ts.kernel (or @ts.function) body",
                               *user_frame())

    def __repr__(self):
        return f"<tessera builtin {self.name}>"


class Namespace:
    """A plain attribute holder (`tile.cp_async.shared`)."""

    def __init__(self, name: str, **attrs):
        self._name = name
        self.__dict__.update(attrs)

    def __repr__(self):
        return f"<tessera namespace {self._name}>"


REGISTRY: dict[int, Builtin] = {}
TRACING: list = []  # the active graph tracers (a stack; non-empty while a @ts.function is traced)
EAGER: list = []    # the @ts.functions running eagerly (tessera.frontend.eager)


def tree_map(fn, obj):
    """`fn` applied to every leaf of nested lists, tuples and dicts (the structure is kept)."""
    if isinstance(obj, (list, tuple)):
        return type(obj)(tree_map(fn, x) for x in obj)
    if isinstance(obj, dict):
        return {k: tree_map(fn, v) for k, v in obj.items()}
    return fn(obj)


def tree_any(pred, obj) -> bool:
    if isinstance(obj, (list, tuple)):
        return any(tree_any(pred, x) for x in obj)
    if isinstance(obj, dict):
        return any(tree_any(pred, x) for x in obj.values())
    return pred(obj)


def module_getattr(module: str):
    """A module `__getattr__`: an unknown `ts.X` / `ts.ops.X` / `tile.X` is a located UnknownName (still an
    AttributeError, so hasattr works)."""
    def __getattr__(name):
        if name.startswith("__"):
            raise AttributeError(name)
        from ..errors import UnknownName
        from .function import user_frame
        raise UnknownName(f"module '{module}' has no name '{name}'", *user_frame())
    return __getattr__


def builtin(name: str, **attrs) -> Builtin:
    b = Builtin(name, **attrs)
    REGISTRY[id(b)] = b
    return b
