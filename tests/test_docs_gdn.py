"""docs/gdn.md and docs/passes.md stay true: every ```python block of gdn.md runs as a script in a
fresh process, and every ```mlir block of passes.md parses and verifies; passes.md has a section
for every registered pass."""
from docs_examples import DOCS, blocks, parse_mlir, run_script

import pytest


PYTHON_BLOCKS = blocks(DOCS / "gdn.md", "python")
MLIR_BLOCKS = blocks(DOCS / "passes.md", "mlir")


def test_docs_have_examples():
    assert len(PYTHON_BLOCKS) >= 8
    assert len(MLIR_BLOCKS) >= 15


@pytest.mark.parametrize("code", PYTHON_BLOCKS)
def test_gdn_example_runs(code, tmp_path):
    run_script(code, tmp_path)


@pytest.mark.parametrize("code", MLIR_BLOCKS)
def test_pass_example_parses_and_verifies(code):
    _, diags, _ = parse_mlir(code)
    assert not diags, diags


def test_pass_reference_covers_every_pass():
    from tessera.passes import PASSES

    text = (DOCS / "passes.md").read_text()
    for name in PASSES:
        assert f"## `{name}`" in text, f"no section for {name}"
