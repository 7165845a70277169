"""A fuzzer for tessera-opt: mutated lit inputs, random pipelines, options and flags.

    python -m tests.fuzz.fuzz_opt --runs 10000 --seed 1 --jobs 2 [--save DIR] [--timeout 60]

Every case runs `tessera.tools.opt.main(argv)` in a forked child (the parent imported tessera and
MLIR once, so a case costs a fork, not an interpreter start) with stdout/stderr captured, and is put
in one outcome class:

    ok          exit 0
    diagnostic  exit 1 with an error message on stderr (the expected way to reject bad input)
    silent      exit 1 with nothing on stderr
    internal    "internal error" on stderr (a bug of ours, caught)
    traceback   a Python traceback on stderr
    crash       killed by a signal (an MLIR assertion, a segfault, a stack overflow)
    hang        still running after --timeout seconds
    exit-N      any other exit status

The first four failing classes (silent, internal, traceback, crash, hang, exit-N) must stay at 0;
`--save DIR` writes each failing case as DIR/<class>-<n>.mlir with its command line on top, to
replay with `tessera-opt`. Cases are a pure function of (seed, index), so a run is reproducible
and `--only N` replays case N.
"""
from __future__ import annotations

import argparse
import os
import random
import re
import select
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LIT = REPO / "lit_tests"
FAILURES = ("silent", "internal", "traceback", "crash", "hang")

# ---------------------------------------------------------------------------- inputs and mutations

NUMBERS = ["0", "-1", "1", "2", "3", "7", "64", "65536", "2147483647", "2147483648", "-2147483648",
           "9223372036854775807", "9223372036854775808", "18446744073709551616", "99999999999", "1.5", "-0"]
TYPES = ["f32", "f16", "bf16", "f64", "i1", "i8", "i32", "i64", "index", "none", "f8E4M3FN", "f8E5M2",
         "complex<f32>", "tuple<>", "vector<2xf32>", "memref<4xf32>", "tensor<?xf32>", "!llvm.ptr", "i0",
         "si32", "ui8", "i99999"]
ARRAY_KINDS = ["i64", "i32", "i16", "i8", "i1", "index", "f32", "f64", "bf16"]
STRINGS = ['"none"', '"128B"', '"bogus"', '""', '"sm_70"', '"\\00"', '"' + "x" * 300 + '"']
_NUM = re.compile(r"(?<![\w.#%@^!])-?\d+(\.\d+)?(?![\w.])")
_TYPE = re.compile(r"\b(f16|bf16|f32|f64|i1|i8|i16|i32|i64|index)\b")
_DIMS = re.compile(r"(?<=[<x])(\d+|\?)(?=x)")
_STR = re.compile(r'"[^"\n]*"')
_TOKEN = re.compile(r"[\w.]+|[^\s\w]")


def _sub_one(rng, pattern, text, repl):
    hits = list(pattern.finditer(text))
    if not hits:
        return text
    m = rng.choice(hits)
    return text[:m.start()] + repl(m) + text[m.end():]


def _lines(rng, text, fn):
    lines = text.split("\n")
    if lines:
        fn(rng, lines, rng.randrange(len(lines)))
    return "\n".join(lines)


def _nest(rng, text):
    n = rng.choice([1, 2, 50, 600, 5000])
    return "module {\n" * n + text + "\n}" * n


def _deep_attr(rng, text):
    n = rng.choice([10, 300, 20000])
    opener, closer = rng.choice([("[", "]"), ("{a = ", "}"), ("array<i64: ", ">"), ("tuple<", ">")])
    attr = f"{{deep = {opener * n}{'1' if opener == '[' else ''}{closer * n}}}"
    return text.replace("attributes {", f"attributes {attr} {{", 1) if "attributes {" in text else text + attr


def _unquote_op(rng, text):
    return _sub_one(rng, re.compile(r'"((?:tile|ts)\.\w+)"\('), text, lambda m: m.group(1) + "(")


def _rename_op(rng, text):
    names = ["tile.load", "tile.store", "tile.view", "tile.mma", "tile.reduce", "tile.bogus", "ts.gemm",
             "ts.softmax", "ts.nothing", "tile.list_get", "tile.alloc_shared", "tile.barrier"]
    return _sub_one(rng, re.compile(r'"(?:tile|ts)\.\w+"'), text, lambda m: f'"{rng.choice(names)}"')


def _delete_attrs(rng, text):
    return _sub_one(rng, re.compile(r"\{[^{}\n]*\}"), text, lambda m: "")


def _bytes(rng, text):
    junk = rng.choice(["\x00", "\ufffd", "\u202e", "}", "{", ")", "(", ">", "<", "%", "^bb0:", "\\", "\"", "#"])
    at = rng.randrange(len(text) + 1)
    return text[:at] + junk + text[at:]


def _swap_tokens(rng, text):
    toks = list(_TOKEN.finditer(text))
    if len(toks) < 2:
        return text
    a, b = sorted(rng.sample(toks, 2), key=lambda m: m.start())
    return text[:a.start()] + b.group() + text[a.end():b.start()] + a.group() + text[b.end():]


def _delete_token(rng, text):
    return _sub_one(rng, _TOKEN, text, lambda m: "")


def _dup_line(rng, lines, i):
    lines.insert(i, lines[i])


def _del_line(rng, lines, i):
    del lines[i]


def _swap_line(rng, lines, i):
    j = rng.randrange(len(lines))
    lines[i], lines[j] = lines[j], lines[i]


def _retype_all(rng, text):
    """Every use of one element type becomes another: a consistent program that reaches the passes."""
    found = sorted(set(_TYPE.findall(text)))
    if not found:
        return text
    old = rng.choice(found)
    return re.sub(rf"\b{old}\b", rng.choice(TYPES[:12]), text)


def _resize_all(rng, text):
    """Every occurrence of one tile dimension becomes another (tiles grow, shrink or turn odd)."""
    found = sorted({d for d in _DIMS.findall(text) if d != "?"} | set(re.findall(r"array<i64: (\d+)", text)))
    if not found:
        return text
    old = rng.choice(found)
    new = rng.choice(["1", "2", "3", "5", "12", "48", "128", "256", "512", "4096", "65536", "0"])
    return re.sub(rf"(?<![\w.]){old}(?![\w.])", new, text)


MUTATORS = [
    _retype_all, _resize_all,
    lambda r, t: _sub_one(r, _NUM, t, lambda m: r.choice(NUMBERS)),
    lambda r, t: _sub_one(r, _TYPE, t, lambda m: r.choice(TYPES)),
    lambda r, t: _sub_one(r, re.compile(r"array<\w+"), t, lambda m: "array<" + r.choice(ARRAY_KINDS)),
    lambda r, t: _sub_one(r, _DIMS, t, lambda m: r.choice(["0", "?", "65536", "99999999999", "4294967296", "-1"])),
    lambda r, t: _sub_one(r, _STR, t, lambda m: r.choice(STRINGS)),
    lambda r, t: _lines(r, t, _dup_line),
    lambda r, t: _lines(r, t, _del_line),
    lambda r, t: _lines(r, t, _swap_line),
    lambda r, t: t[:r.randrange(len(t) + 1)],
    _nest, _deep_attr, _unquote_op, _rename_op, _delete_attrs, _bytes, _swap_tokens, _delete_token,
]

# ---------------------------------------------------------------------------- pipelines and flags

OPTION_VALUES = {
    "arch": ["sm_80", "sm_90a", "sm_90", "sm_70", "", "abc"],
    "num_warps": ["1", "2", "4", "8", "16", "0", "-4", "4.5", "abc", "", "64", "99999999999"],
    "num_stages": ["1", "2", "3", "4", "0", "-1", "abc", "", "99999999999"],
    "warp_specialize": ["0", "1", "2", "true", "abc", ""],
    "persistent": ["0", "1", "abc", ""],
    "threshold": ["0.01", "0", "1", "-1", "abc", "nan", "inf", "1e309", ""],
}
UPSTREAM = ["canonicalize", "cse", "convert-scf-to-cf", "lower-affine", "symbol-dce", "inline",
            "loop-invariant-code-motion", "convert-linalg-to-loops", "expand-strided-metadata",
            "convert-elementwise-to-linalg", "func.func(cse)", "func.func(canonicalize,cse)",
            "convert-arith-to-llvm", "convert-func-to-llvm", "finalize-memref-to-llvm",
            "reconcile-unrealized-casts", "convert-vector-to-scf", "gpu-kernel-outlining",
            "canonicalize{max-iterations=abc}", "not-a-pass", "func.func(tessera-narrow-index)"]
FLAGS = ["--split-input-file", "--verify-diagnostics", "--mlir-print-op-generic", "--mlir-print-debuginfo",
         "--print-ir-after-all"]


def _tessera_element(rng, passes):
    name = rng.choice(sorted(passes))
    params = passes[name]
    if not params or rng.random() < 0.3:
        return name if rng.random() < 0.97 else name + "{bogus=1}"
    opts = [f"{k}={rng.choice(OPTION_VALUES.get(k, ['1', 'abc']))}" for k in params if rng.random() < 0.6]
    return name + ("{" + " ".join(opts) + "}" if opts else "")


def _pipeline(rng, passes):
    r = rng.random()
    if r < 0.04:
        n = rng.choice([2, 50, 400])
        return "builtin.module(" * n + "cse" + ")" * n
    if r < 0.08:
        return rng.choice(["", ",", "(", ")", "{", "cse,,cse", "cse(", "tessera-lower-tile-to-cpu(cse)",
                           "builtin.module(tessera-lower-tile-to-cpu", "func.func(tessera-lower-tile-to-cpu)",
                           "tessera-lower-tile-to-cpu{", "a" * 5000, "cse{" + "{" * 200])
    if r < 0.15:
        from tessera.backends import cpu, nvidia
        return rng.choice([cpu.PIPELINE_LLVM,
                           nvidia.PIPELINE_GPU.format(arch="sm_80", num_warps=4, num_stages=3, ws=0, persistent=0),
                           nvidia.PIPELINE_GPU_SM90.format(arch="sm_90a", num_warps=4, num_stages=3, ws=0,
                                                           persistent=0)])
    elems = [(_tessera_element(rng, passes) if rng.random() < 0.65 else rng.choice(UPSTREAM))
             for _ in range(rng.randint(1, 4))]
    text = ",".join(elems)
    return f"builtin.module({text})" if rng.random() < 0.1 else text


_RUN_PIPELINE = re.compile(r"RUN:.*?(?:-p |--pass-pipeline=)'([^']*)'")
_OPTION = re.compile(r"\b(\w+)=([^\s}]*)")


def _own_pipeline(rng, text):
    """The pipeline of one of the input's own RUN lines, an option value perhaps changed."""
    found = _RUN_PIPELINE.findall(text)
    if not found:
        return None
    pipeline = rng.choice(found)
    if rng.random() < 0.5:
        pipeline = _sub_one(rng, _OPTION, pipeline,
                            lambda m: f"{m.group(1)}={rng.choice(OPTION_VALUES.get(m.group(1), ['0', 'abc']))}")
    return pipeline


def make_case(seed: int, index: int, corpus, passes):
    """(argv without the input path, input text) of case `index`; deterministic. Semantic mutations
    (numbers, types, shapes, attributes) are weighted up: they get past the parser to the passes."""
    rng = random.Random(f"{seed}:{index}")
    name, text = rng.choice(corpus)
    own = _own_pipeline(rng, text)
    if rng.random() < 0.9:
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            mutate = rng.choice(MUTATORS[:7]) if rng.random() < 0.6 else rng.choice(MUTATORS)
            text = mutate(rng, text)
    argv = []
    if own and rng.random() < 0.5:
        argv += ["-p", own]
    elif rng.random() < 0.8:
        argv += ["-p", _pipeline(rng, passes)]
    argv += [f for f in FLAGS if rng.random() < 0.12]
    return argv, text, name


def load_corpus():
    return [(str(p.relative_to(REPO)), p.read_text()) for p in sorted(LIT.rglob("*.mlir"))]


def pass_options():
    import inspect
    from tessera.passes import PASSES
    return {name: list(inspect.signature(m.run).parameters)[1:] for name, m in PASSES.items()}

# ---------------------------------------------------------------------------- running


def classify(status, err: str) -> str:
    if status is None:
        return "hang"
    if os.WIFSIGNALED(status):
        return "crash"
    rc = os.WEXITSTATUS(status)
    if "Traceback (most recent call last)" in err:
        return "traceback"
    if "internal error" in err:
        return "internal"
    if rc == 0:
        return "ok"
    if rc == 1:
        return "diagnostic" if err.strip() else "silent"
    return f"exit-{rc}"


def _run_child(argv, path, out_path, err_path):
    pid = os.fork()
    if pid == 0:  # the child: never return into the parent's code
        code = 70
        try:
            os.setsid()
            fo = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            fe = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(fo, 1)
            os.dup2(fe, 2)
            sys.stdout = open(1, "w", closefd=False)
            sys.stderr = open(2, "w", closefd=False)
            from tessera.tools import opt
            code = opt.main(argv + [path, "-o", "/dev/null"] if "-o" not in argv else argv + [path])
            sys.stdout.flush()
            sys.stderr.flush()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 2
        except BaseException:  # noqa: BLE001 - a traceback escaping main() is a finding
            import traceback
            traceback.print_exc()
            sys.stderr.flush()
            code = 71
        os._exit(code)
    return pid


def run_case(argv, text, workdir, timeout):
    path = os.path.join(workdir, "input.mlir")
    with open(path, "w", encoding="utf-8", errors="surrogatepass") as f:
        f.write(text)
    out, err = os.path.join(workdir, "out"), os.path.join(workdir, "err")
    pid = _run_child(argv, path, out, err)
    deadline, status = time.monotonic() + timeout, None
    while True:
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            status = st
            break
        if time.monotonic() > deadline:
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            break
        time.sleep(0.002)
    with open(err, encoding="utf-8", errors="replace") as f:
        err_text = f.read()
    return classify(status, err_text), err_text


def _worker(seed, indices, timeout, corpus, passes, wfd):
    with tempfile.TemporaryDirectory(prefix="tessera-fuzz-") as d:
        for i in indices:
            argv, text, src = make_case(seed, i, corpus, passes)
            t0 = time.monotonic()
            cls, err = run_case(argv, text, d, timeout)
            line = f"{i}\t{cls}\t{time.monotonic() - t0:.3f}\t{src}\n"
            os.write(wfd, line.encode())
    os.close(wfd)


def fuzz(runs, seed=0, jobs=2, timeout=60.0, save=None, only=None, progress=False):
    """Run cases [0, runs) (or just `only`) on `jobs` processes; returns (Counter of classes, failures)
    where failures is a list of (index, class, source file)."""
    import tessera.tools.opt  # noqa: F401 - import once, before forking, so children share it
    import mlir.ir  # noqa: F401
    corpus, passes = load_corpus(), pass_options()
    indices = [only] if only is not None else list(range(runs))
    jobs = max(1, min(jobs, len(indices)))
    readers, pids = [], []
    for j in range(jobs):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            code = 0
            try:
                _worker(seed, indices[j::jobs], timeout, corpus, passes, w)
            except BaseException:  # noqa: BLE001
                import traceback
                traceback.print_exc()
                code = 1
            os._exit(code)
        os.close(w)
        readers.append(os.fdopen(r))
        pids.append(pid)
    counts, failures, seconds, done = Counter(), [], [], 0
    open_readers = list(readers)
    while open_readers:
        ready, _, _ = select.select(open_readers, [], [])
        for f in ready:
            line = f.readline()
            if not line:
                open_readers.remove(f)
                continue
            i, cls, secs, src = line.rstrip("\n").split("\t")
            counts[cls] += 1
            seconds.append(float(secs))
            done += 1
            if cls not in ("ok", "diagnostic"):
                failures.append((int(i), cls, src))
                if save:
                    _save(save, seed, int(i), cls, corpus, passes)
            if progress and done % 100 == 0:
                print(f"  {done}/{len(indices)} {dict(counts)}", file=sys.stderr, flush=True)
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        if status:
            raise RuntimeError(f"a fuzz worker failed (status {status}); see its traceback above")
    return counts, failures, seconds


def _save(save, seed, i, cls, corpus, passes):
    argv, text, src = make_case(seed, i, corpus, passes)
    os.makedirs(save, exist_ok=True)
    with open(os.path.join(save, f"{cls}-{i}.mlir"), "w", encoding="utf-8", errors="surrogatepass") as f:
        f.write(f"// fuzz seed={seed} case={i} from {src}\n// ARGS: {argv!r}\n{text}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    p.add_argument("--timeout", type=float, default=60.0, help="seconds before a case counts as a hang")
    p.add_argument("--save", help="directory for failing cases")
    p.add_argument("--only", type=int, help="run just this case index (with its seed)")
    p.add_argument("--show", type=int, help="print case N's arguments and input, run nothing")
    a = p.parse_args(argv)
    if a.show is not None:
        args, text, src = make_case(a.seed, a.show, load_corpus(), pass_options())
        print(f"// from {src}\n// ARGS: {args!r}\n{text}")
        return 0
    t0 = time.time()
    counts, failures, seconds = fuzz(a.runs, a.seed, a.jobs, a.timeout, a.save, a.only, progress=True)
    total = sum(counts.values())
    print(f"tessera-opt fuzz: {total} runs, seed {a.seed}, {time.time() - t0:.0f} s wall, "
          f"slowest case {max(seconds, default=0):.1f} s")
    for cls in ("ok", "diagnostic") + FAILURES + tuple(sorted(c for c in counts if c.startswith("exit-"))):
        print(f"  {cls:<11} {counts.get(cls, 0)}")
    for i, cls, src in failures[:40]:
        print(f"  case {i}: {cls} ({src})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
