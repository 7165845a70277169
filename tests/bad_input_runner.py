"""Runs the bad-input corpus (tests/bad_input_corpus.py) in one process: `python bad_input_runner.py OUTDIR
[NAME ...]`. Each case is written to OUTDIR/<name>.py and run as a script; one JSON line per case reports
what it raised and where. A line `START <name>` precedes each case, so a process that aborts or hangs names
the case that did it (the caller's timeout and exit status tell which)."""
from __future__ import annotations

import json
import os
import pathlib
import runpy
import signal
import sys
import traceback

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

CASE_SECONDS = 120   # a case still running after this is a hang


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang()


def classify(name, expected, path, source):
    import tessera as ts
    n_lines = source.count("\n") + 1
    env = dict(os.environ)
    try:
        runpy.run_path(str(path), run_name="__main__")
    except _Hang:
        return {"outcome": "hang"}
    except ts.TesseraError as e:
        cls = type(e).__name__
        want = getattr(ts, expected, None) or getattr(__import__("tessera.errors", fromlist=["x"]), expected)
        located = (getattr(e, "filename", None) == str(path) and isinstance(getattr(e, "line", None), int)
                   and 1 <= e.line <= n_lines and "^" in str(e))
        if not isinstance(e, want):
            return {"outcome": "wrong-class", "class": cls, "message": str(e)[:400]}
        return {"outcome": "ok" if located else "unlocated", "class": cls, "line": getattr(e, "line", None),
                "file": getattr(e, "filename", None), "message": str(e)[:400]}
    except BaseException as e:  # noqa: BLE001 - the point: anything that is not a tessera error is a defect
        return {"outcome": "raw", "class": type(e).__name__, "message": str(e)[:300],
                "trace": traceback.format_exc()[-1500:]}
    finally:
        os.environ.clear()
        os.environ.update(env)
    return {"outcome": "accepted"}


def main(argv):
    from bad_input_corpus import CASES, PRELUDE
    out = pathlib.Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    only = set(argv[1:])
    signal.signal(signal.SIGALRM, _alarm)
    for name, expected, body in CASES:
        if only and name not in only:
            continue
        path = out / f"{name}.py"
        source = PRELUDE + body
        path.write_text(source)
        print(f"START {name}", flush=True)
        signal.alarm(CASE_SECONDS)
        try:
            result = classify(name, expected, path, source)
        finally:
            signal.alarm(0)
        print(json.dumps({"name": name, "expected": expected, **result}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
