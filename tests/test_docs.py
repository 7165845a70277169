"""The documentation's examples run: every ```python block of docs/guide.md, docs/runtime.md, docs/emulator.md and
docs/training.md as a script in a fresh process, and every ```mlir block of docs/tile-dialect.md parses and verifies."""
from docs_examples import DOCS, blocks, parse_mlir, run_script

import pytest


PYTHON_BLOCKS = blocks(DOCS / "guide.md", "python")
RUNTIME_BLOCKS = blocks(DOCS / "runtime.md", "python")
EMULATOR_BLOCKS = blocks(DOCS / "emulator.md", "python")
TRAINING_BLOCKS = blocks(DOCS / "training.md", "python")
MLIR_BLOCKS = blocks(DOCS / "tile-dialect.md", "mlir")


def test_docs_have_examples():
    assert len(PYTHON_BLOCKS) >= 4
    assert len(MLIR_BLOCKS) >= 14
    assert len(RUNTIME_BLOCKS) >= 3
    assert len(TRAINING_BLOCKS) >= 2


@pytest.mark.parametrize("code", RUNTIME_BLOCKS)
def test_runtime_example_runs(code, tmp_path):
    run_script(code, tmp_path)


@pytest.mark.parametrize("code", EMULATOR_BLOCKS)
def test_emulator_example_runs(code, tmp_path):
    run_script(code, tmp_path)


@pytest.mark.parametrize("code", TRAINING_BLOCKS)
def test_training_example_runs(code, tmp_path):
    run_script(code, tmp_path)


@pytest.mark.parametrize("code", PYTHON_BLOCKS)
def test_guide_example_runs(code, tmp_path):
    run_script(code, tmp_path)


@pytest.mark.parametrize("code", MLIR_BLOCKS)
def test_dialect_example_parses_and_verifies(code):
    from mlir import ir
    from tessera.ir import verify_tile

    module, diags, ctx = parse_mlir(code)
    with ctx, ir.Location.unknown():
        assert verify_tile(module.operation), diags
    assert not diags, diags


def test_dialect_reference_covers_every_op():
    from tessera.ir.dialect import TILE_OPS

    text = (DOCS / "tile-dialect.md").read_text()
    examples = "\n".join(p.values[0] for p in MLIR_BLOCKS)
    for op in TILE_OPS:
        assert f"### `tile.{op}`" in text, f"no section for tile.{op}"
        assert f'"tile.{op}"' in examples, f"no example of tile.{op}"
