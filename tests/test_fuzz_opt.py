"""The bounded CI run of the tessera-opt fuzzer (tests/fuzz/fuzz_opt.py): 300 mutated lit inputs
with random pipelines, options and flags; none may crash, hang, fail silently, print a traceback
or an internal error. The long run is `python -m tests.fuzz.fuzz_opt --runs 10000`.

The fuzzer forks a child per case, so it runs in a process of its own: forking pytest's process,
where earlier tests left MLIR thread pools holding locks, can deadlock the children."""
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_fuzz_tessera_opt_bounded(tmp_path):
    r = subprocess.run([sys.executable, "-m", "tests.fuzz.fuzz_opt", "--runs", "300", "--seed", "2026",
                        "--jobs", "2", "--timeout", "120", "--save", str(tmp_path)],
                       cwd=REPO, capture_output=True, text=True, timeout=1200)
    counts = {k: int(v) for k, v in re.findall(r"^  ([a-z-]+\d*) +(\d+)$", r.stdout, re.M)}
    assert sum(counts.values()) == 300, r.stdout + r.stderr[-3000:]
    assert counts["ok"] > 30 and counts["diagnostic"] > 30, counts  # the cases reach both outcomes
    failing = {k: v for k, v in counts.items() if k not in ("ok", "diagnostic") and v}
    assert not failing and r.returncode == 0, (failing, r.stdout[-3000:],
                                               "replay: python -m tests.fuzz.fuzz_opt --seed 2026 --show N")
