"""Bad input never escapes (issue 11, Deliver 5): every case of tests/bad_input_corpus.py gives the expected
tessera error, located at the user's line with a caret — no raw Python or MLIR exception, no process abort,
no hang, nothing silently accepted. The corpus runs in one child process (tests/bad_input_runner.py), so an
abort or a hang inside MLIR is seen here as the case the child was running."""
from __future__ import annotations

import collections
import os
import pathlib
import subprocess
import sys

from child_protocol import read_child_output
from bad_input_corpus import CASES

HERE = pathlib.Path(__file__).resolve().parent


def test_corpus_is_large_and_named_uniquely():
    names = [n for n, _, _ in CASES]
    assert len(names) >= 150 and len(set(names)) == len(names)


def test_every_bad_input_is_a_located_tessera_error(tmp_path):
    env = {**os.environ, "TESSERA_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("TESSERA_BACKEND", None)
    try:
        proc = subprocess.run([sys.executable, str(HERE / "bad_input_runner.py"), str(tmp_path / "cases")],
                              capture_output=True, text=True, timeout=1500, env=env, cwd=tmp_path)
        out, status = proc.stdout, proc.returncode
    except subprocess.TimeoutExpired as e:
        out, status = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or ""), "timeout"
    results, started = read_child_output(out, "name")
    if started is not None:   # the child died (or hung) inside this case
        results[started] = {"name": started, "outcome": "abort" if status != "timeout" else "hang"}
    missing = [n for n, _, _ in CASES if n not in results]
    counts = collections.Counter(r["outcome"] for r in results.values())
    bad = {n: r for n, r in results.items() if r["outcome"] != "ok"}
    report = "\n".join(f"{n}: {r['outcome']} {r.get('class', '')} {r.get('message', '')[:200]}" for n, r in bad.items())
    assert not bad and not missing, (f"outcomes {dict(counts)}, not run: {missing[:5]}\n{report}\n"
                                     f"child exit {status}; stderr tail:\n{proc.stderr[-2000:] if status != 'timeout' else ''}")
    assert counts["ok"] == len(CASES)
