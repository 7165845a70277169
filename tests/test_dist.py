"""tessera.dist on 4 CPU processes (gloo): meshes, collectives against single-process NumPy results,
contexts, pipeline point-to-point, @ts.distribute, a @ts.function calling a collective, a world of 1,
and faults (a rank that raises, one killed with SIGKILL, one that hangs) ending in bounded time.

Each multi-process run is `tessera run --nproc 4 tests/dist_worker.py OUT SCENARIO` (or plain torchrun)
in its own session with a timeout; the ranks write OUT/rank<R>.json (tests/dist_worker.py)."""
import json
import subprocess
import sys
from pathlib import Path

import dist_jobs
import ml_dtypes
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "dist_worker.py"
TIMEOUT = 10          # TESSERA_DIST_TIMEOUT for every run here
JOB_LIMIT = 90        # seconds one multi-process job may take before the test kills it


def _env():
    return dist_jobs.job_env(TIMEOUT)


def run_job(out, scenario, launcher="tessera"):
    out.mkdir(parents=True, exist_ok=True)
    if launcher == "tessera":
        cmd = dist_jobs.tessera_run(4, WORKER, out, scenario)
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "4",
               str(WORKER), str(out), scenario]
    proc = dist_jobs.start(cmd, TIMEOUT)
    log, seconds = dist_jobs.wait(proc, JOB_LIMIT, scenario)
    dist_jobs.assert_nothing_left(out, scenario)
    ranks = {}
    for r in range(4):
        f = out / f"rank{r}.json"
        if f.exists():
            ranks[r] = json.loads(f.read_text())
    return proc.returncode, ranks, seconds, log


def rank_input(rank, dtype=np.float32, shape=(4, 6)):
    base = np.arange(np.prod(shape), dtype=np.float32).reshape(shape) - 7.0
    return (base * (rank + 1) / 4.0).astype(dtype)


def array(entry):
    return np.array(entry["values"], dtype=np.float64).reshape(entry["shape"])


def dp_group(r):
    return [r % 2, 2 + r % 2]


def tp_group(r):
    return [2 * (r // 2), 2 * (r // 2) + 1]


REDUCE = {"sum": lambda xs: np.sum(xs, axis=0), "mean": lambda xs: np.mean(xs, axis=0),
          "max": lambda xs: np.max(xs, axis=0), "min": lambda xs: np.min(xs, axis=0)}


@pytest.fixture(scope="module")
def basic(tmp_path_factory):
    rc, ranks, seconds, log = run_job(tmp_path_factory.mktemp("dist_basic"), "basic")
    assert rc == 0, log[-4000:]
    assert sorted(ranks) == [0, 1, 2, 3], log[-4000:]
    return ranks


def test_mesh_sizes_and_ranks(basic):
    for r, res in basic.items():
        assert res["mesh"] == {"size": 4, "dp_size": 2, "tp_size": 2, "rank": r, "dp": r // 2, "tp": r % 2,
                               "axes": ["dp", "tp"], "shape": [2, 2], "is_mesh": True}


def test_all_reduce_matches_numpy(basic):
    for r, res in basic.items():
        for op, f in REDUCE.items():
            for axis, group in (("dp", dp_group(r)), ("tp", tp_group(r))):
                want = f(np.stack([rank_input(g) for g in group]))
                np.testing.assert_allclose(array(res[f"all_reduce_{op}_{axis}"]), want, rtol=1e-6)
        assert res["all_reduce_bf16_kind"] == "ndarray bfloat16"
        want = np.sum([rank_input(g) for g in dp_group(r)], axis=0).astype(ml_dtypes.bfloat16).astype(np.float64)
        np.testing.assert_array_equal(array(res["all_reduce_sum_dp_bf16"]), want)
        assert res["all_reduce_torch_kind"] == "Tensor" and res["input_unchanged"]
        np.testing.assert_array_equal(array(res["all_reduce_max_tp_torch"]),
                                      np.max([rank_input(g) for g in tp_group(r)], axis=0))
        want = np.sum([rank_input(g).astype(ml_dtypes.bfloat16).astype(np.float32) for g in tp_group(r)], axis=0)
        np.testing.assert_array_equal(array(res["all_reduce_sum_tp_torch_bf16"]),
                                      want.astype(ml_dtypes.bfloat16).astype(np.float64))
        with_current_axis = np.sum([rank_input(g) for g in tp_group(r)], axis=0)
        np.testing.assert_allclose(array(res["all_reduce_current_axis"]), with_current_axis, rtol=1e-6)


def test_all_gather_and_reduce_scatter(basic):
    for r, res in basic.items():
        tp = [rank_input(g) for g in tp_group(r)]
        dp = [rank_input(g) for g in dp_group(r)]
        np.testing.assert_array_equal(array(res["all_gather_tp_dim0"]), np.concatenate(tp, axis=0))
        np.testing.assert_array_equal(array(res["all_gather_tp_dim1"]), np.concatenate(tp, axis=1))
        assert res["all_gather_dp_bf16"]["dtype"] == "bfloat16"
        np.testing.assert_array_equal(array(res["all_gather_dp_bf16"]),
                                      np.concatenate([d.astype(ml_dtypes.bfloat16) for d in dp]).astype(np.float64))
        np.testing.assert_array_equal(array(res["all_gather_dp_torch"]), np.concatenate(dp, axis=1))
        dp_i, tp_i = r // 2, r % 2
        np.testing.assert_allclose(array(res["reduce_scatter_dp_dim0"]), np.sum(dp, axis=0)[2 * dp_i:2 * dp_i + 2])
        np.testing.assert_allclose(array(res["reduce_scatter_tp_dim1"]), np.sum(tp, axis=0)[:, 3 * tp_i:3 * tp_i + 3])
        want = np.sum([t.astype(ml_dtypes.bfloat16).astype(np.float32) for t in tp], axis=0)[2 * tp_i:2 * tp_i + 2]
        np.testing.assert_array_equal(array(res["reduce_scatter_tp_bf16"]),
                                      want.astype(ml_dtypes.bfloat16).astype(np.float64))
        assert "do not split into 2 equal parts" in res["reduce_scatter_uneven"]
        assert "the ranks' tensors differ" in res["all_gather_mismatch"] and "shape [3, 2]" in res["all_gather_mismatch"]


def test_broadcast_and_shard(basic):
    full = np.arange(8 * 3, dtype=np.float32).reshape(8, 3)
    for r, res in basic.items():
        np.testing.assert_array_equal(array(res["broadcast_dp_src1"]), rank_input(dp_group(r)[1]))
        src = rank_input(tp_group(r)[0])
        np.testing.assert_array_equal(array(res["broadcast_tp_src0_torch_bf16"]),
                                      src.astype(ml_dtypes.bfloat16).astype(np.float64))
        np.testing.assert_array_equal(array(res["shard_dp_0"]), full[4 * (r // 2):4 * (r // 2) + 4])
        np.testing.assert_array_equal(array(res["shard_tp_1"]), full.T[:, 4 * (r % 2):4 * (r % 2) + 4])
        assert "do not split" in res["shard_uneven"]
        # shards put back together are the whole array: the single-process view
    parts = [array(basic[r]["shard_dp_0"]) for r in (0, 2)]
    np.testing.assert_array_equal(np.concatenate(parts), full)


def test_contexts(basic):
    for r, res in basic.items():
        assert res["current_axis"] == "tp"
        assert res["assigned"] == [1, r % 2 == 1]
        np.testing.assert_array_equal(array(res["broadcast_assigned"]), rank_input(tp_group(r)[1]))
        assert res["stages_run"] == [r // 2]   # pipeline_stage(i) along "dp" ran on stage i only


def test_pipeline_send_recv(basic):
    for r, res in basic.items():
        stage0 = rank_input(r % 2)[:2, :3] * 2.0
        want = stage0 if r // 2 == 0 else stage0 + 1.0   # stage 1 received stage 0's value and added 1
        np.testing.assert_array_equal(array(res["pipeline_result"]), want)
    assert basic[2]["recv_torch_kind"] == "Tensor"
    assert basic[2]["recv_bf16"]["dtype"] == "bfloat16"
    np.testing.assert_array_equal(array(basic[2]["recv_bf16"]),
                                  rank_input(0)[:1].astype(ml_dtypes.bfloat16).astype(np.float64))


def test_distribute_function_and_class(basic):
    for r, res in basic.items():
        assert res["default_mesh_is_last"] and res["distribute_fn_mesh"] and res["distribute_class_mesh"]
        np.testing.assert_allclose(array(res["distribute_fn"]), np.sum([rank_input(g) for g in dp_group(r)], axis=0))
        np.testing.assert_allclose(array(res["distribute_class"]),
                                   np.mean([rank_input(g) * 3.0 for g in tp_group(r)], axis=0), rtol=1e-6)


def test_ts_function_with_collective_compiles_to_one_graph(basic):
    for r, res in basic.items():
        assert res["ts_function_eager_fallbacks"] == 0
        want = np.sum([rank_input(g) + 1.0 for g in dp_group(r)], axis=0) * 0.5
        np.testing.assert_allclose(array(res["ts_function"]), want, rtol=1e-6)
        np.testing.assert_allclose(array(res["ts_function_again"]), want, rtol=1e-6)


def test_world_of_one_and_too_big_mesh(tmp_path):
    proc = subprocess.run([sys.executable, str(WORKER), str(tmp_path), "world1"], env=_env(), cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((tmp_path / "rank0.json").read_text())
    v = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert res["sizes"] == [1, 1, 0, 0]
    for k in ("all_reduce", "all_gather", "broadcast"):
        np.testing.assert_array_equal(array(res[k]), v)
    assert res["torch_loaded"] is False
    assert "needs 4 processes" in res["too_big"] and "tessera run --nproc 4" in res["too_big"]
    assert "torchrun --nproc-per-node 4" in res["too_big"]


def test_import_loads_neither_torch_nor_mlir():
    code = ("import sys, tessera, tessera.dist; from tessera import dist; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'mlir')))")
    out = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def _check_fault(ranks, culprit, survivors, phrase, limit):
    for r in survivors:
        assert r in ranks, f"rank {r} wrote nothing"
        err = ranks[r]["error"]
        assert err and phrase in err, err
        assert culprit in ranks[r]["ranks"], (r, ranks[r])
        assert ranks[r]["seconds"] < limit, (r, ranks[r]["seconds"])


def test_rank_that_raises(tmp_path):
    rc, ranks, seconds, log = run_job(tmp_path, "raise")
    assert rc != 0
    _check_fault(ranks, 2, (0, 1, 3), "rank 2 failed: ZeroDivisionError: rank 2 divides by zero", TIMEOUT)
    assert seconds < 60, seconds


def test_rank_killed_by_sigkill_under_plain_torchrun(tmp_path):
    rc, ranks, seconds, log = run_job(tmp_path, "kill", launcher="torchrun")
    assert rc != 0
    _check_fault(ranks, 1, (0, 2, 3), "rank(s) 1 died without an error", TIMEOUT)
    assert seconds < 60, seconds


def test_rank_that_hangs(tmp_path):
    rc, ranks, seconds, log = run_job(tmp_path, "hang")
    assert rc != 0
    _check_fault(ranks, 3, (0, 1, 2), "did not reach this collective", TIMEOUT + 5)
    assert seconds < 60, seconds


def test_run_cli_errors():
    from tessera.tools.cli import main
    assert main(["run", "--nproc", "0", str(WORKER)]) == 2
    assert main(["run", "--nproc", "2", "no_such_script.py"]) == 2


def test_docs_example_runs_on_four_processes(tmp_path):
    from docs_examples import DOCS, blocks
    script = tmp_path / "example.py"
    script.write_text("\n\n".join(b.values[0] for b in blocks(DOCS / "distributed.md", "python")))
    proc = dist_jobs.start(dist_jobs.tessera_run(4, script), TIMEOUT)
    log, _ = dist_jobs.wait(proc, JOB_LIMIT, "docs example")
    assert proc.returncode == 0, log[-4000:]
    # the example asserts its shapes; the ranks' printed lines may interleave, so only the exit code is read
