"""Cutting the seeds' kernels, functions and classes out of the seed documents (issue 11, Deliver 4).

The seeds are read from ../shared/seeds/ when this checkout sits beside it, else from the byte-identical
copies in tests/seeds/ (a fresh clone elsewhere). A definition is cut from its first decorator line at
column 0 to the last indented line of its body (a class from its `class` line); the only edits are the
documented ones: `.global(` → `.global_(` (a Python keyword) and the imports seed 000 omits (`import tessera
as ts`, `from tessera import tile, Tensor`).
"""
from __future__ import annotations

import ast
import linecache
import pathlib
import re

HERE = pathlib.Path(__file__).resolve().parent
SEED_FILES = {"000": "000_0c39bc2fbab5e9e6.txt", "001": "001_1ef32cb57a1ada4e.txt"}
PRELUDE = "import tessera as ts\nfrom tessera import tile, Tensor\n"


def seed_path(seed: str) -> pathlib.Path:
    shared = HERE.parent.parent / "shared" / "seeds" / SEED_FILES[seed]
    return shared if shared.exists() else HERE / "seeds" / SEED_FILES[seed]


def _code_lines(text):
    """The lines inside ```python fences, with their line numbers in the seed file."""
    inside = False
    for no, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            inside = line.strip() == "```python" if not inside else False
            continue
        if inside:
            yield no, line


def definitions(seed: str) -> dict[str, tuple[int, str]]:
    """{name: (first line in the seed file, source)} of every top-level decorated def in the seed's code
    (a decorated class is skipped: its decorator once swallowed the class into the next def's cut)."""
    lines = list(_code_lines(seed_path(seed).read_text()))
    out, i = {}, 0
    while i < len(lines):
        no, line = lines[i]
        if not line.startswith("@ts."):
            i += 1
            continue
        j = i
        while j < len(lines) and not lines[j][1].startswith(("def ", "class ")):
            j += 1
        if j >= len(lines):
            break
        if lines[j][1].startswith("class "):   # a decorated class (class_definition cuts it): not a def's cut
            i = j + 1
            continue
        k = j + 1
        while k < len(lines) and (not lines[k][1].strip() or lines[k][1][0] in " \t)" or lines[k][1].startswith("#")):
            k += 1
        src = "\n".join(l for _, l in lines[i:k]).rstrip() + "\n"
        name = re.match(r"def\s+(\w+)", lines[j][1]).group(1)
        out[name] = (no, src)
        i = k
    return out


def class_definition(seed: str, name: str) -> tuple[int, str]:
    """(first line, source) of the top-level `class name` in the seed's code: to the last indented line."""
    lines = list(_code_lines(seed_path(seed).read_text()))
    for i, (no, line) in enumerate(lines):
        if re.match(rf"class\s+{name}\b", line):
            k = i + 1
            while k < len(lines) and (not lines[k][1].strip() or lines[k][1][0] in " \t"):
                k += 1
            return no, "\n".join(l for _, l in lines[i:k]).rstrip() + "\n"
    raise KeyError(name)


def source(seed: str, name: str, fixes=()) -> str:
    """The definition's text with the documented edits (and a test's stated `fixes`, (old, new) pairs),
    padded with blank lines so that line numbers in errors are the seed file's."""
    defs = definitions(seed)
    no, src = defs[name] if name in defs else class_definition(seed, name)
    src = src.replace(".global(", ".global_(")
    for old, new in fixes:
        if old not in src:
            raise AssertionError(f"the fix {old!r} no longer applies to {name}")
        src = src.replace(old, new)
    return "\n" * (no - 1 - PRELUDE.count("\n")) + PRELUDE + src


def load(seed: str, name: str, env: dict | None = None, fixes=()):
    """Compile the seed's definition in a fresh module namespace (`env` adds names it refers to)."""
    import tessera as ts  # noqa: F401
    filename = str(seed_path(seed))
    text = source(seed, name, fixes)
    # tessera reads a kernel's source through linecache: it must see the edited text, at the seed's lines
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    code = compile(text, filename, "exec")
    ns = {"__name__": f"seed{seed}_{name}", "__file__": filename}
    ns.update(env or {})
    exec(code, ns)  # noqa: S102 - the seed's own text
    return ns[name]


def parses(seed: str, name: str) -> bool:
    try:
        ast.parse(source(seed, name))
        return True
    except SyntaxError:
        return False
