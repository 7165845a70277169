"""The parsed source of a decorated function: AST, file/line offsets, globals, closure."""
from __future__ import annotations

import ast
import inspect
import textwrap

from ..errors import CompilationError


class KernelSource:
    def __init__(self, fn):
        self.fn = fn
        self.name = fn.__name__
        try:
            self.filename = inspect.getsourcefile(fn) or fn.__code__.co_filename
            lines, first = inspect.getsourcelines(fn)
        except (OSError, TypeError) as e:
            raise CompilationError(f"cannot read the source of '{fn.__name__}': {e}") from None
        raw = "".join(lines)
        self.source = textwrap.dedent(raw)
        first_line = lines[0]
        dedented_first = self.source.splitlines()[0] if self.source else ""
        self.col_offset = len(first_line) - len(first_line.lstrip()) - (len(dedented_first) - len(dedented_first.lstrip()))
        self.line_offset = first - 1
        self.source_lines = self.source.splitlines()
        tree = ast.parse(self.source)
        fdefs = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        if not fdefs:
            raise CompilationError(f"'{fn.__name__}' is not a function definition", self.filename, first)
        self.tree = fdefs[0]
        self.globals = fn.__globals__
        self.closure = {}
        if fn.__closure__:
            for name, cell in zip(fn.__code__.co_freevars, fn.__closure__):
                try:
                    self.closure[name] = cell.cell_contents
                except ValueError:
                    pass

    def dependency_key(self):
        """Values of the simple globals/closure names the body reads (part of the cache key)."""
        from .. import dtypes
        names = sorted({n.id for n in ast.walk(self.tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)})
        deps = []
        for n in names:
            v = self.closure.get(n, self.globals.get(n, None))
            if isinstance(v, (bool, int, float, str, tuple, dtypes.DType)) or v is None:
                deps.append((n, repr(v)))
        return tuple(deps)

    def context_names(self) -> frozenset:
        """Attribute names the body reads (`ctx.BLOCK_SIZE`): launch keywords naming one are context constexprs."""
        names = getattr(self, "_context_names", None)
        if names is None:
            names = self._context_names = frozenset(n.attr for n in ast.walk(self.tree) if isinstance(n, ast.Attribute)
                                                    and n.attr.isidentifier() and not n.attr.startswith("_"))
        return names
