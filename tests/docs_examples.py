"""Shared by the documentation tests: fenced blocks of a markdown file, running a Python example as
a script in a fresh process, and parsing an MLIR example with the tessera dialects loaded."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)


def blocks(path: Path, lang: str):
    """(id, code) of each fenced block of `lang`, named by the nearest heading above it."""
    text = path.read_text()
    prose = _FENCE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)  # blank out code, keep offsets
    out = []
    for n, m in enumerate(b for b in _FENCE.finditer(text) if b.group(1) == lang):
        heads = re.findall(r"^#+ +(.+)$", prose[:m.start()], re.M)
        head = re.sub(r"[^A-Za-z0-9]+", "-", heads[-1]).strip("-").lower() if heads else "top"
        line = text.count("\n", 0, m.start()) + 1
        out.append(pytest.param(m.group(2), id=f"{n}-{head}-L{line}"))
    return out


def run_script(code, tmp_path):
    # kernels and functions are compiled from their source file, so each example is a real script
    script = tmp_path / "example.py"
    script.write_text(code)
    env = dict(os.environ)  # includes the session's TESSERA_CACHE_DIR (tests/conftest.py)
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=600)
    assert r.returncode == 0, f"example failed (exit {r.returncode}):\n{r.stdout}\n{r.stderr}"


def parse_mlir(code):
    """(module, diagnostics) of an MLIR example parsed and verified in a tessera context."""
    from mlir import ir
    from tessera.ir import new_context

    ctx = new_context()
    with ctx, ir.Location.unknown():
        diags = []
        ctx.attach_diagnostic_handler(lambda d: diags.append(str(d)) or True)
        module = ir.Module.parse(code)
        assert module.operation.verify()
        return module, diags, ctx
