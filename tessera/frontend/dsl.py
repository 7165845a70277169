"""The names kernels call (`tile.load`, `ts.ops.exp`, ...). They are markers: the code generator
recognises them by identity; calling one from plain Python is an error."""
from __future__ import annotations

from ..errors import TesseraError


class Builtin:
    __slots__ = ("name", "__dict__")

    def __init__(self, name: str, **attrs):
        self.name = name
        self.__dict__.update(attrs)

    def __call__(self, *args, **kwargs):
        raise TesseraError(f"`{self.name}` can only be used inside a @ts.kernel (or @ts.function) body")

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


def builtin(name: str, **attrs) -> Builtin:
    b = Builtin(name, **attrs)
    REGISTRY[id(b)] = b
    return b
