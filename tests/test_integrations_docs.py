"""Every ```python block of docs/integrations.md runs (issue 13, Deliver 6): the page's examples are
executed in order, each section's blocks in one namespace, in a child process with a timeout."""
from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

pytest.importorskip("torch")

DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "integrations.md"


def _sections():
    text = DOC.read_text()
    out = []
    for part in re.split(r"^## ", text, flags=re.M)[1:]:
        title = part.splitlines()[0].strip()
        blocks = re.findall(r"```python\n(.*?)```", part, flags=re.S)
        if blocks:
            out.append((title, "\n".join(blocks)))
    return out


def test_the_page_has_examples():
    assert len(_sections()) >= 2


@pytest.mark.parametrize("title, code", _sections(), ids=[t for t, _ in _sections()])
def test_docs_example_runs(title, code, tmp_path):
    script = tmp_path / "example.py"
    script.write_text(code)
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600, cwd=tmp_path,
                       env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0, f"section '{title}' failed:\n{r.stderr[-3000:]}"
