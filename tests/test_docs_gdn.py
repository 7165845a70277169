"""docs/gdn.md and docs/passes.md stay true: every ```python block of gdn.md runs as a script in a
fresh process, and every ```mlir block of passes.md parses and verifies; passes.md has a section
for every registered pass."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)


def _blocks(path: Path, lang: str):
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


PYTHON_BLOCKS = _blocks(DOCS / "gdn.md", "python")
MLIR_BLOCKS = _blocks(DOCS / "passes.md", "mlir")


def test_docs_have_examples():
    assert len(PYTHON_BLOCKS) >= 8
    assert len(MLIR_BLOCKS) >= 15


@pytest.mark.parametrize("code", PYTHON_BLOCKS)
def test_gdn_example_runs(code, tmp_path):
    # functions and generated kernels are compiled from source files, so each example is a real script
    script = tmp_path / "example.py"
    script.write_text(code)
    env = dict(os.environ)  # includes the session's TESSERA_CACHE_DIR (tests/conftest.py)
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=600)
    assert r.returncode == 0, f"example failed (exit {r.returncode}):\n{r.stdout}\n{r.stderr}"


@pytest.mark.parametrize("code", MLIR_BLOCKS)
def test_pass_example_parses_and_verifies(code):
    from mlir import ir
    from tessera.ir import new_context

    with new_context() as ctx, ir.Location.unknown():
        diags = []

        def handler(d):
            diags.append(str(d))
            return True

        ctx.attach_diagnostic_handler(handler)
        module = ir.Module.parse(code)
        assert module.operation.verify()
        assert not diags, diags


def test_pass_reference_covers_every_pass():
    from tessera.passes import PASSES

    text = (DOCS / "passes.md").read_text()
    for name in PASSES:
        assert f"## `{name}`" in text, f"no section for {name}"
