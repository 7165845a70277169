"""The bounded CI run of the tessera-opt fuzzer (tests/fuzz/fuzz_opt.py): 300 mutated lit inputs
with random pipelines, options and flags; none may crash, hang, fail silently, print a traceback
or an internal error. The long run is `python -m tests.fuzz.fuzz_opt --runs 10000`."""
from fuzz import fuzz_opt


def test_fuzz_tessera_opt_bounded():
    counts, failures, _ = fuzz_opt.fuzz(300, seed=2026, jobs=2, timeout=120)
    assert sum(counts.values()) == 300
    assert counts["ok"] > 30 and counts["diagnostic"] > 30, counts  # the cases reach both outcomes
    assert not failures, (f"{len(failures)} failing cases {failures[:10]}; replay one with "
                          "`python -m tests.fuzz.fuzz_opt --seed 2026 --show N`")
