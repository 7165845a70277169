"""From MLIR locations back to the user's source: errors raised inside passes point at user code."""
from __future__ import annotations

import re

from ..errors import CompilationError

_FILE_LOC = re.compile(r'loc\("(.+?)":(\d+):(\d+)')


def source_position(loc):
    """(file, line, col) of an `ir.Location` (or its printed form), or (None, None, None)."""
    m = _FILE_LOC.search(str(loc))
    if not m:
        return None, None, None
    return m.group(1), int(m.group(2)), int(m.group(3))


def error_at(loc, msg, cls=CompilationError, **kw):
    f, line, col = source_position(loc)
    return cls(msg, f, line, col, **kw)
