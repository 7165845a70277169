"""AST → tile IR. The visitor is split by construct: `base` (values, scope, errors, types),
`exprs` (expressions and operators), `stmts` (assignment and control flow), `calls` (the DSL's
builtins), `elementwise` (typed arithmetic, casts, broadcasting)."""
from .kernel_gen import KernelGen, NeedSpecialisation  # noqa: F401
