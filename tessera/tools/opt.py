"""tessera-opt: parse MLIR holding tessera and upstream dialects, verify it, run a pass pipeline, print.

    tessera-opt FILE -p 'tessera-lower-tile-to-cpu,canonicalize,cse'     (also --pass-pipeline=...)
    tessera-opt --list-passes
    tessera-opt FILE --split-input-file --verify-diagnostics

As mlir-opt: `// -----` lines split the input (--split-input-file) into chunks processed one by one,
outputs joined by `// -----`. --verify-diagnostics checks `// expected-error {{...}}` (also
@+N, @-N, @above, @below, @unknown; -warning, -remark, -note; -re for {{regex}} parts) against
what parsing, `tessera.ir.verify_tile` and the passes report, by line and substring.
Errors read `file:line:col: error: ...`; a Python traceback only with TESSERA_DEBUG=1.
"""
from __future__ import annotations

import argparse
import re
import sys
import traceback

from .. import knobs
from ..errors import LocatedError, TesseraError
from .opt_guard import run_guarded
from .opt_screen import custom_syntax_op, screen

SPLIT_MARKER = "// -----"
_TRACE_HINT = "TESSERA_DEBUG=1 shows the traceback"
_EXPECT_RE = re.compile(r"expected-(error|warning|remark|note)(-re)? *(@([+-][0-9]+|above|below|unknown))? *"
                        r"\{\{(.*)\}\}\s*$")
_SEE_OP = "see current operation:"  # the note the Python bindings add to verifier errors
_MULTI_OP = "source must contain a single top-level operation"


def _arg_parser():
    p = argparse.ArgumentParser(prog="tessera-opt", description="Parse, verify, transform and print "
                                "MLIR holding the tessera dialects (tile, ts) and upstream dialects.")
    p.add_argument("input", nargs="?", default="-", help="input .mlir file ('-' for stdin, the default)")
    p.add_argument("-p", "--pass-pipeline", dest="pipeline", metavar="PIPELINE",
                   help="pass pipeline mixing tessera and upstream passes, e.g. 'tessera-lower-tile-to-cpu,cse'")
    p.add_argument("--list-passes", action="store_true", help="list the tessera passes and exit")
    p.add_argument("--split-input-file", action="store_true", help=f"process '{SPLIT_MARKER}'-separated chunks separately")
    p.add_argument("--verify-diagnostics", action="store_true", help="check diagnostics against expected-* comments")
    p.add_argument("--print-ir-after-all", action="store_true", help="print the IR to stderr after every pass")
    p.add_argument("-o", dest="output", default="-", metavar="FILE", help="output file ('-' for stdout)")
    p.add_argument("--mlir-print-debuginfo", action="store_true", help="print locations")
    p.add_argument("--mlir-print-op-generic", action="store_true", help="print every op in generic form")
    return p


def _file_loc(loc):
    """(file, line, col) of the first file:line:col location inside `loc`, or None."""
    try:
        if loc.is_a_file():
            return loc.filename, loc.start_line, loc.start_col
        if loc.is_a_name():
            return _file_loc(loc.child_loc)
        if loc.is_a_callsite():
            return _file_loc(loc.callee)
        if loc.is_a_fused():
            for sub in loc.locations:
                found = _file_loc(sub)
                if found:
                    return found
    except Exception:  # noqa: BLE001 - an odd location is reported without a position
        pass
    return None


def _window(text, col, width=80):
    """The part of a long source line around column `col`, and the column within it."""
    if len(text) <= 2 * width:
        return text, col
    lo = max(col - 1 - width, 0)
    part = text[lo:col - 1 + width]
    prefix = "..." if lo else ""
    return prefix + part + ("..." if col - 1 + width < len(text) else ""), col - lo + len(prefix)


def _mlir_string(s: str) -> str:
    return '"' + "".join(f"\\{ord(ch):02X}" if ch in '"\\' or ord(ch) < 32 else ch for ch in s) + '"'


class _Expected:
    def __init__(self, kind, msg, is_re, at, line):
        self.kind, self.msg, self.at, self.line, self.matched = kind, msg, at, line, False
        self.regex = None
        if is_re:  # literal text with {{regex}} parts, as in mlir-opt
            parts = re.split(r"\{\{(.*?)\}\}", msg)
            self.regex = re.compile("".join(p if i % 2 else re.escape(p) for i, p in enumerate(parts)))

    def matches(self, kind, msg):
        if kind != self.kind:
            return False
        return bool(self.regex.search(msg)) if self.regex else self.msg in msg


def _expectations(lines):
    """expected-* designators of a chunk; `line` is the line they apply to (None: @unknown)."""
    out, below, last_plain = [], [], None
    for no, text in enumerate(lines, 1):
        m = _EXPECT_RE.search(text)
        if not m:
            for e in below:
                e.line = no
            below, last_plain = [], no
            continue
        kind, is_re, off, msg = m.group(1), m.group(2), m.group(4), m.group(5)
        e = _Expected(kind, msg, bool(is_re), no, no)
        if off == "unknown":
            e.line = None
        elif off == "above":
            e.line = last_plain if last_plain is not None else -1
        elif off == "below":
            e.line = -1
            below.append(e)
        elif off:
            e.line = no + int(off)
        out.append(e)
    return out


class _Chunk:
    """One input (or one --split-input-file chunk) in its own context."""

    def __init__(self, opts, name, text):
        self.opts, self.name, self.text = opts, name, text
        self.lines = text.split("\n")
        self.diags = []  # (severity, (file, line, col) | None, message)
        self.live = False  # print diagnostics as they come (off while parsing and when verifying)
        self.printed = 0
        self.keep = []  # Python objects owning the IR
        self.progress = None  # called with each stage done ("verified", then pass labels) in a guarded child

    # -- diagnostics --------------------------------------------------------------------------
    def on_diag(self, d):
        try:
            self.add(str(d.severity).rsplit(".", 1)[-1].lower(), _file_loc(d.location), d.message)
            for n in d.notes:
                if not (self.opts.verify_diagnostics and n.message.startswith(_SEE_OP)):
                    self.add("note", _file_loc(n.location), n.message)
        except Exception:  # noqa: BLE001 - never let a handler error escape into MLIR
            if knobs.debug():
                traceback.print_exc()
        return True

    def add(self, sev, loc, msg):
        if loc is not None and loc[0] == "-":  # the implicit-module fallback parse names no file
            loc = (self.name, loc[1], loc[2])
        self.diags.append((sev, loc, msg))
        if self.live:
            self.flush()

    def flush(self):
        for sev, loc, msg in self.diags[self.printed:]:
            print(self.format(sev, loc, msg), file=sys.stderr)
        self.printed = len(self.diags)

    def format(self, sev, loc, msg):
        if loc is None:
            return f"{self.name}: {sev}: {msg}"
        f, line, col = loc
        head = f"{f}:{line}:{col}: {sev}: {msg}"
        if f != self.name or not 1 <= line <= len(self.lines) or not self.lines[line - 1].strip():
            return head
        text, col = _window(self.lines[line - 1], col)
        return f"{head}\n{text}\n{' ' * max(col - 1, 0)}^"

    def has_error(self):
        return any(sev == "error" for sev, _, _ in self.diags)

    # -- stages -------------------------------------------------------------------------------
    def parse(self, ir):
        findings = screen(self.text)
        for line, col, msg in findings:
            self.add("error", (self.name, line, col), msg)
        if findings:
            return None
        try:
            op = ir.Operation.parse(self.text, source_name=self.name)
        except ir.MLIRError:
            if not (len(self.diags) == 1 and self.diags[0][2].startswith(_MULTI_OP)):
                return self.parse_failed()
            # several (or no) top-level ops: parse into an implicit module as mlir-opt does, then
            # re-parse its printed form so that locations name the file instead of "-"
            del self.diags[:]
            try:
                m = ir.Module.parse(self.text)
                asm = m.operation.get_asm(enable_debug_info=True)
                op = ir.Operation.parse(asm.replace('loc("-":', f"loc({_mlir_string(self.name)}:"),
                                        source_name=self.name)
            except ir.MLIRError:
                return self.parse_failed()
        self.keep.append(op)
        if op.operation.name != "builtin.module":
            module = ir.Module.create(loc=ir.Location.file(self.name, 0, 0))
            module.body.append(op)
            self.keep.append(module)
            return module.operation
        return op.operation

    def mark(self, stage):
        if self.progress:
            self.progress(stage)

    def running_label(self, pipeline, done):
        """What was running when a guarded child died, from the stages it reported."""
        if "verified" not in done:
            return None
        from ..passes import PASSES, parse_pipeline
        labels = [e.name if e.name in PASSES else e.text() for e in parse_pipeline(pipeline)] if pipeline else []
        ran = len(done) - 1
        return f"pass '{labels[ran]}'" if ran < len(labels) else "printing the output"

    def parse_failed(self):
        """MLIR's parser fails without a word on the custom form of an op of a dialect defined in
        IRDL (tile, ts): say so, at the op."""
        if not self.has_error():
            found = custom_syntax_op(self.text)
            if found:
                line, col, op = found
                self.add("error", (self.name, line, col),
                         f"custom assembly of '{op}' cannot be parsed: tile and ts ops are written in the "
                         f'generic form, e.g. %r = "{op}"(%a) {{attrs}} : (operand types) -> result type')
            else:
                self.add("error", None, "cannot parse the input (MLIR's parser gave no reason)")
        return None

    def run_pipeline(self, ir, module, pipeline):
        from ..passes import PASSES, build_pass_manager, parse_pipeline
        labels = [e.name if e.name in PASSES else e.text() for e in parse_pipeline(pipeline)]
        done = []

        def after(label, op):
            done.append(label)
            self.mark(label)
            if self.opts.print_ir_after_all:
                if self.live:
                    self.flush()
                print(f"// -----// IR Dump After {label} //----- //", file=sys.stderr)
                print(self.asm(getattr(op, "operation", op)), file=sys.stderr, flush=True)

        pm = build_pass_manager(pipeline, print_after_all=after)
        current = lambda: labels[len(done)] if len(done) < len(labels) else labels[-1]  # noqa: E731
        try:
            pm.run(module)
        except ir.MLIRError:
            if not self.has_error():
                self.add("error", None, f"pass '{current()}' failed")
            return False
        except LocatedError as e:  # a tessera pass pointing at the user's source
            self.add("error", (e.filename, e.line, e.col or 1) if e.filename and e.line else None, e.msg)
            return False
        except TesseraError as e:
            self.add("error", None, f"pass '{current()}' failed: {e}")
            return False
        except Exception as e:  # noqa: BLE001 - a bug in a tessera pass: report it, no traceback
            if knobs.debug():
                raise
            self.add("error", None, f"internal error in pass '{current()}': {type(e).__name__}: {e} "
                                    f"(a bug in tessera: please report it with this input; {_TRACE_HINT})")
            return False
        return not self.has_error()

    def asm(self, op):
        return op.get_asm(enable_debug_info=self.opts.mlir_print_debuginfo,
                          print_generic_op_form=self.opts.mlir_print_op_generic)

    def process(self, pipeline):
        """Parse, verify, run; returns the printed module or None on failure."""
        from mlir import ir
        from ..ir import new_context, verify_tile
        ctx = new_context()
        ctx.emit_error_diagnostics = True  # else a pass that emits an error but succeeds aborts
        ctx.enable_multithreading(False)
        handler = ctx.attach_diagnostic_handler(self.on_diag)
        try:
            with ctx, ir.Location.file(self.name, 0, 0):
                module = self.parse(ir)
                self.live = not self.opts.verify_diagnostics
                if self.live:
                    self.flush()
                if module is None or not verify_tile(module) or self.has_error():
                    return None
                self.mark("verified")
                if pipeline and not self.run_pipeline(ir, module, pipeline):
                    return None
                out = self.asm(module)
                return out if out.endswith("\n") else out + "\n"
        finally:
            handler.detach()
            self.live = False

    def check_expected(self):
        """The expected-diagnostics protocol: True if every diagnostic was expected and vice versa."""
        exps, ok = _expectations(self.lines), True
        for sev, loc, msg in self.diags:
            if loc is not None and loc[0] != self.name:
                cands = []
            else:
                line = loc[1] if loc else None
                cands = [e for e in exps if e.line == line and e.matches(sev, msg)]
            if not cands:
                ok = False
                print(self.format("error", loc, f"unexpected {sev}: {msg}"), file=sys.stderr)
                continue
            next((e for e in cands if not e.matched), cands[0]).matched = True
        for e in exps:
            if not e.matched:
                ok = False
                print(f"{self.name}:{e.at}: error: expected {e.kind} \"{e.msg}\" was not produced", file=sys.stderr)
        return ok


def _split(text):
    """(first line number, text) of each `// -----`-separated chunk."""
    chunks, start, cur = [], 1, []
    for no, line in enumerate(text.split("\n"), 1):
        if line.lstrip().startswith(SPLIT_MARKER):
            chunks.append((start, "\n".join(cur)))
            start, cur = no + 1, []
        else:
            cur.append(line)
    chunks.append((start, "\n".join(cur)))
    return chunks


def _list_passes():
    from ..passes import PASSES
    print("Tessera passes:")
    for name, mod in PASSES.items():
        doc = (mod.__doc__ or "").strip().splitlines()
        head, summary = name, doc[0] if doc else ""
        if summary.startswith(name) and ": " in summary:  # "name: ..." or "name{options}: ..."
            head, summary = (x.strip() for x in summary.split(": ", 1))
        print(f"  {head:<34} {summary}")
    print("Upstream MLIR passes (canonicalize, cse, convert-scf-to-cf, ...) are also accepted and mix "
          "freely with tessera passes in one pipeline.")


def _read(path):
    if path == "-":
        return "<stdin>", sys.stdin.read()
    with open(path, "rb") as f:
        return path, f.read().decode("utf-8")


def _run(argv):
    opts = _arg_parser().parse_args(argv)
    for stream in (sys.stdout, sys.stderr):  # never die on a character the terminal cannot show
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    if opts.list_passes:
        _list_passes()
        return 0
    try:
        name, text = _read(opts.input)
    except (OSError, UnicodeDecodeError) as e:
        print(f"tessera-opt: error: cannot read input '{opts.input}': {e}", file=sys.stderr)
        return 1
    pipeline = (opts.pipeline or "").strip() or None
    if pipeline:
        from ..ir import new_context
        from ..passes import build_pass_manager
        with new_context():
            try:
                build_pass_manager(pipeline)
            except TesseraError as e:
                print(f"tessera-opt: error: {e}", file=sys.stderr)
                return 1
    chunks = _split(text) if opts.split_input_file else [(1, text)]
    outs, ok = [], True
    for start, chunk_text in chunks:
        chunk = _Chunk(opts, name, "\n" * (start - 1) + chunk_text)  # keep the file's line numbers
        if knobs.opt_guard():
            out = run_guarded(chunk, pipeline)
            if not opts.verify_diagnostics:
                chunk.flush()
        else:
            out = chunk.process(pipeline)
        if out is not None:
            outs.append(out)
        ok &= chunk.check_expected() if opts.verify_diagnostics else out is not None
    result = "// -----\n".join(outs)
    if opts.output == "-":
        sys.stdout.write(result)
        sys.stdout.flush()
    else:
        try:
            with open(opts.output, "w") as f:
                f.write(result)
        except OSError as e:
            print(f"tessera-opt: error: cannot write output '{opts.output}': {e}", file=sys.stderr)
            return 1
    return 0 if ok else 1


def main(argv=None) -> int:
    try:
        return _run(argv)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1
    except Exception as e:  # noqa: BLE001 - no traceback for users unless TESSERA_DEBUG=1
        if knobs.debug():
            raise
        print(f"tessera-opt: internal error: {type(e).__name__}: {e} (a bug in tessera: please report it; "
              f"{_TRACE_HINT})",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
