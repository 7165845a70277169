"""The version-sensitive corners of the MLIR Python bindings, in one module (DESIGN §2).

Pinned: xtc-mlir-python-bindings 22.1.8.4 (LLVM 22.1.8).
"""
from __future__ import annotations

from mlir import ir, passmanager
from mlir.dialects import irdl


def load_irdl(source: str) -> None:
    """Load IRDL dialect definitions into the current context."""
    irdl.load_dialects(ir.Module.parse(source))


def add_python_pass(pm: "passmanager.PassManager", fn, name: str) -> None:
    """Append a Python callable `fn(op)` as a module pass; a TesseraError inside it propagates."""
    def run(op, pass_):
        fn(op)
    pm.add(run, name=name, argument=name)


def new_pass_manager() -> "passmanager.PassManager":
    return passmanager.PassManager("builtin.module")


def erase_op(op) -> None:
    op.operation.erase() if hasattr(op, "operation") else op.erase()


def type_params(t) -> str:
    """Parameters of an IRDL type, read from its printed form (no DynamicType in these bindings)."""
    s = str(t)
    return s[s.index("<") + 1: s.rindex(">")]
