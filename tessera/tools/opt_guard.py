"""tessera-opt's guarded child: one input chunk is parsed, transformed and printed in a forked
process, so that an abort inside MLIR or LLVM (an assertion, `LLVM ERROR: ...`, a segfault) ends
the child, not tessera-opt. The parent gets the result, the diagnostics and the passes completed
through a pipe; what the child wrote on stderr (live diagnostics, --print-ir-after-all dumps) is
copied through. A child that dies becomes an error diagnostic naming the pass that was running:

- `LLVM ERROR: <reason>` is LLVM refusing the program (e.g. an instruction the chosen GPU lacks):
  an ordinary error, reported with LLVM's reason;
- anything else (an assertion, a signal) is a bug in MLIR or tessera: an "internal error" with the
  assertion text and a request to report it.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import tempfile

_CRASH_MARKERS = ("LLVM ERROR:", "Assertion `", "Assertion '", "PLEASE submit a bug report", "Stack dump:")


def run_guarded(chunk, pipeline):
    """chunk.process(pipeline) in a child; returns its output (None on failure) with chunk.diags
    filled as if it had run here."""
    sys.stdout.flush()
    sys.stderr.flush()
    err = tempfile.TemporaryFile()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report through the pipe and leave with os._exit, never return
        code = 0
        try:
            os.close(r)
            os.dup2(err.fileno(), 2)
            chunk.progress = lambda label: os.write(w, b"P" + label.encode("utf-8", "replace") + b"\n")
            out = chunk.process(pipeline)
            result = {"out": out, "diags": chunk.diags}
            os.write(w, b"R" + json.dumps(result).encode() + b"\n")
        except BaseException as e:  # noqa: BLE001 - report it to the parent like a crash
            try:
                os.write(2, f"tessera-opt child: {type(e).__name__}: {e}\n".encode())
            finally:
                code = 70
        finally:
            try:
                sys.stderr.flush()
            except Exception:  # noqa: BLE001
                pass
            os._exit(code)
    os.close(w)
    passes, result = [], None
    with os.fdopen(r, "rb") as pipe:
        for line in pipe:
            if line.startswith(b"P"):
                passes.append(line[1:-1].decode("utf-8", "replace"))
            elif line.startswith(b"R"):
                result = json.loads(line[1:])
    _, status = os.waitpid(pid, 0)
    err.seek(0)
    text = err.read().decode("utf-8", "replace")
    err.close()
    shown, crash = _split_crash(text)
    if shown:
        sys.stderr.write(shown)
        sys.stderr.flush()
    if result is not None and status == 0:
        chunk.diags = [(sev, tuple(loc) if loc else None, msg) for sev, loc, msg in result["diags"]]
        chunk.printed = len(chunk.diags)  # the child printed them already (when live)
        return result["out"]
    chunk.printed = len(chunk.diags)
    where = chunk.running_label(pipeline, passes)
    chunk.add("error", None, _crash_message(status, crash, where))
    return None


def _split_crash(text):
    """(what to show as is, the crash report) of the child's stderr."""
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if any(m in line for m in _CRASH_MARKERS) or line.startswith("tessera-opt child:"):
            return "".join(lines[:i]), "".join(lines[i:])
    return text, ""


def _crash_message(status, crash, where):
    stage = f"in {where}" if where else "while parsing or verifying the input"
    llvm = next((ln.split("LLVM ERROR:", 1)[1].strip() for ln in crash.splitlines() if "LLVM ERROR:" in ln), None)
    if llvm:
        return f"LLVM cannot compile this program ({stage}): {llvm}"
    why = next((ln.strip() for ln in crash.splitlines()
                if "Assertion `" in ln or "Assertion '" in ln or ln.startswith("tessera-opt child:")), "")
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        what = f"MLIR crashed ({name}) {stage}"
    else:
        what = f"the pass process failed (exit {os.WEXITSTATUS(status)}) {stage}"
    return (f"internal error: {what}{': ' + why if why else ''}; this is a bug in MLIR or tessera, please report "
            "it with this input (TESSERA_OPT_GUARD=0 runs in-process for a debugger)")
