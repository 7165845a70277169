"""What tessera-opt checks in the input text before MLIR's parser sees it: forms that make MLIR
abort (an assertion) or overflow the C++ stack instead of reporting an error. Each finding is
(line, col, message) and becomes an ordinary error diagnostic.

- nesting: the parser, verifier, printer and walks recurse once per level of `{ ( [ <`; past
  MAX_NESTING levels the process would die of a stack overflow;
- `array<index: ...>`: a dense array of index elements asserts in MLIR (index has no bit width);
- shaped types whose element count does not fit in int64 assert when a pass asks for the count;
- the input's size (MAX_INPUT_BYTES).
"""
from __future__ import annotations

import re

MAX_NESTING = 256
MAX_INPUT_BYTES = 256 << 20
MAX_ELEMENTS = (1 << 62) - 1
_OPEN, _CLOSE = "{([<", "})]>"
_ARRAY_INDEX = re.compile(r"array\s*<\s*index\b")
_SHAPED = re.compile(r"\b(tensor|memref|vector)\s*<\s*((?:(?:\?|\[?\d+\]?)\s*x\s*)+)")
_DIM = re.compile(r"\d+")


def _code_spans(text):
    """(start, end) of the text outside comments and string literals."""
    spans, i, n, start = [], 0, len(text), 0
    while i < n:
        c = text[i]
        if c == "/" and text.startswith("//", i):
            spans.append((start, i))
            i = text.find("\n", i)
            i = n if i < 0 else i
            start = i
        elif c == '"':
            spans.append((start, i))
            i += 1
            while i < n and text[i] != '"' and text[i] != "\n":
                i += 2 if text[i] == "\\" else 1
            i += 1
            start = i
        else:
            i += 1
    spans.append((start, n))
    return [(a, b) for a, b in spans if b > a]


def _position(text, offset, line_starts):
    import bisect
    line = bisect.bisect_right(line_starts, offset)
    return line, offset - line_starts[line - 1] + 1


def screen(text: str) -> list[tuple[int, int, str]]:
    """Findings that must stop the input before it reaches MLIR (empty: go ahead)."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_INPUT_BYTES:
        return [(1, 1, f"the input is larger than {MAX_INPUT_BYTES >> 20} MiB")]
    if "\x00" in text:
        return [(*_position(text, text.index("\x00"), _starts(text)), "the input contains a NUL character")]
    starts = _starts(text)
    found = []
    depth = 0
    for a, b in _code_spans(text):
        chunk = text[a:b]
        for i, c in enumerate(chunk):
            if c in _OPEN:
                depth += 1
                if depth > MAX_NESTING:
                    found.append((*_position(text, a + i, starts),
                                  f"the input nests regions, types or attributes deeper than {MAX_NESTING} levels"))
                    return found
            elif c in _CLOSE and not (c == ">" and i and chunk[i - 1] == "-"):  # `->` closes nothing
                depth = max(depth - 1, 0)
        for m in _ARRAY_INDEX.finditer(chunk):
            found.append((*_position(text, a + m.start(), starts),
                          "'array<index: ...>' is not supported (MLIR has no dense array of index); "
                          "use array<i64: ...>"))
        for m in _SHAPED.finditer(chunk):
            count = 1
            for d in _DIM.findall(m.group(2)):
                count *= int(d)
            if count > MAX_ELEMENTS:
                found.append((*_position(text, a + m.start(), starts),
                              f"the {m.group(1)} type has {count} elements, more than fit in a 64-bit count"))
    return found


_CUSTOM_OP = re.compile(r"(?<![!#\w.$])((?:tile|ts)\.[A-Za-z_]\w*)")


def custom_syntax_op(text: str):
    """(line, col, name) of the first tile/ts op written in custom (unquoted) form, or None."""
    for a, b in _code_spans(text):
        m = _CUSTOM_OP.search(text, a, b)
        if m:
            return (*_position(text, m.start(), _starts(text)), m.group(1))
    return None


def _starts(text):
    starts = [0]
    starts.extend(m.end() for m in re.finditer("\n", text))
    return starts
