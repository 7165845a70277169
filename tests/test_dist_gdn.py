"""The GDN seed programs on 4 CPU processes (gloo), each against the single-process computation of the
same semantics (issue 14, item 3; docs/distributed.md "The seed programs"):

- seed 000's `optimized_gradient_sync`, cut from the seed text and run verbatim on a dp×tp = 2×2 mesh: a small
  gradient is all-reduced over dp (correct). A large one ([R, C], C > 1024) is reduce-scattered over dp
  (dp rank d holds rows d·R/2.. of S_t = Σ_d' g[d', t], the sum over its own dp group, i.e. over the ranks
  with its tp coordinate t) and then all-gathered over **tp**, which concatenates part d of S_0 and part d of
  S_1: rank (d, t) gets [S_0[part d]; S_1[part d]] — not the synchronised gradient S_t. Even when the tp ranks
  hold the same gradient (a replicated parameter, as in data parallelism) it is part d of S twice. The seed
  is wrong in itself; the fix (tessera.gdn.optimized_gradient_sync) all-gathers over **dp**, the axis just
  scattered, which makes the pair an all-reduce: every rank gets S_t.
- seed 001's `distributed_gdn_layer` on dp×mp = 2×2, cut from the seed text with the stated SEED001_FIXES
  (tests/dist_gdn_worker.py: @ts.function under @ts.distribute, the transformer layer's weights, the previous
  layers split over dp like x, and `broadcast(src=mp_rank)` instead of the all_gather that joins the mp ranks'
  identical copies), and tessera.gdn's version (each connection computed on one mp rank, one all_reduce
  over mp): gathered over dp, both equal the single-process layer on the full batch.
- `tessera.gdn.data_parallel_step` on dp = 4: three AdamW steps of a tiny LM give the single-process run's
  losses and final parameters on the global batch.

Each job is `tessera run --nproc 4 tests/dist_gdn_worker.py OUT SCENARIO` in its own session with a timeout;
no process outlives it."""
from pathlib import Path

import numpy as np
import pytest

import dist_gdn_worker as W
import dist_jobs

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "dist_gdn_worker.py"
JOB_LIMIT = 150       # seconds one 4-process job may take before the test kills it (dp_train: ~65 s on 2 cores)


def start_job(out, scenario):
    out.mkdir(parents=True, exist_ok=True)
    return dist_jobs.start(dist_jobs.tessera_run(W.N_PROCS, WORKER, out, scenario), 60)


def finish_job(proc, out, scenario):
    """Wait for the job (killing its session after JOB_LIMIT), check nothing is left, load every rank's npz."""
    log, _ = dist_jobs.wait(proc, JOB_LIMIT, scenario)
    dist_jobs.assert_nothing_left(out, scenario)
    assert proc.returncode == 0, f"the {scenario} job failed:\n{log[-6000:]}"
    return [dict(np.load(out / f"rank{r}.npz")) for r in range(W.N_PROCS)]


def run_job(tmp_path, scenario):
    return finish_job(start_job(tmp_path / scenario, scenario), tmp_path / scenario, scenario)


# -- seed 000: optimized_gradient_sync ----------------------------------------------------------------
def _dp_sum(grads_of_rank, t, i):
    """Σ over dp of gradient i of the ranks with tp coordinate t (rank (d, t) is global rank 2d + t)."""
    return sum(grads_of_rank(2 * d + t)[i].astype(np.float64) for d in range(2))


def _seed_large(grads_of_rank, d, i):
    """What the seed's reduce_scatter(dp) + all_gather(tp) gives rank (d, ·): part d of each tp column's sum."""
    rows = grads_of_rank(0)[i].shape[0] // 2
    return np.concatenate([_dp_sum(grads_of_rank, t, i)[d * rows:(d + 1) * rows] for t in range(2)])


def test_optimized_gradient_sync(tmp_path):
    ranks = run_job(tmp_path, "grad_sync")
    cases = {"own": W.rank_gradients, "replicated": lambda r: W.tp_replicated_gradients(r // 2)}
    for rank, got in enumerate(ranks):
        d, t = divmod(rank, 2)
        for name, grads_of_rank in cases.items():
            # tessera.gdn's (fixed): the dp sum, large and small alike (two f32 addends: exact)
            for i in range(2):
                np.testing.assert_allclose(got[f"fixed_{name}_{i}"], _dp_sum(grads_of_rank, t, i), rtol=1e-6, atol=1e-6)
            # the seed verbatim: the small gradient is the dp sum; the large one is the mix described above
            np.testing.assert_allclose(got[f"seed_{name}_1"], _dp_sum(grads_of_rank, t, 1), rtol=1e-6, atol=1e-6)
            np.testing.assert_allclose(got[f"seed_{name}_0"], _seed_large(grads_of_rank, d, 0), rtol=1e-6, atol=1e-6)
            assert not np.allclose(got[f"seed_{name}_0"], _dp_sum(grads_of_rank, t, 0), atol=1e-3)
        # a large gradient whose dim 0 (3) does not split over dp is all-reduced: ranks (0, t), (1, t) hold t, 2 + t
        np.testing.assert_array_equal(got["fixed_uneven"], np.full((3, W.LARGE_WIDTH), 2 + 2 * t, np.float32))


# -- seed 001: distributed_gdn_layer ------------------------------------------------------------------
def _single_process_layer():
    """(tessera's single-process layer, NumPy's) on the full batch: transformer_layer(x) + Σ_i delta_connection(
    prev_i, x, W_i, L − i)."""
    from tessera import gdn
    from tessera.gdn import model_reference, reference
    from tessera.gdn.distributed import transformer_layer
    x, prev, gates, params = W.layer_inputs()
    n = len(prev)
    deltas = [np.asarray(gdn.delta_connection(p, x, w, n - i)) for i, (p, w) in enumerate(zip(prev, gates))]
    tessera_layer = np.asarray(transformer_layer(x, params)) + sum(deltas)
    numpy_layer = model_reference.transformer_layer(x.astype(np.float64), params) + sum(
        reference.delta_connection(p.astype(np.float64), x.astype(np.float64), w, n - i)
        for i, (p, w) in enumerate(zip(prev, gates)))
    return tessera_layer, numpy_layer


def test_distributed_gdn_layer(tmp_path):
    proc = start_job(tmp_path / "gdn_layer", "gdn_layer")
    want, want_np = _single_process_layer()
    np.testing.assert_allclose(want, want_np, rtol=1e-5, atol=1e-5)
    ranks = finish_job(proc, tmp_path / "gdn_layer", "gdn_layer")
    rows = want.shape[0] // 2
    for rank, got in enumerate(ranks):
        d = rank // 2
        for which in ("seed", "lib"):
            assert got[f"{which}_gathered"].shape == want.shape
            np.testing.assert_allclose(got[f"{which}_gathered"], want, rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(got[f"{which}_shard"], want[d * rows:(d + 1) * rows], rtol=1e-5, atol=1e-5)


def test_seed001_fixes_apply():
    """Every stated fix still matches the seed text once (seed_text.source raises when one does not)."""
    import seed_text
    text = seed_text.source("001", "distributed_gdn_layer", W.SEED001_FIXES)
    assert "dist.broadcast(delta_contrib, src=mp_rank" in text and "all_gather" not in text


# -- data-parallel training ---------------------------------------------------------------------------
def _single_process_training():
    config, params, batches = W.train_setup()
    return W.single_process_training(config, params, batches), params


def test_data_parallel_training(tmp_path):
    """dp = 4, 2 rows per rank of a global batch of 8: the per-step loss (the mean over ranks) and the final
    parameters equal the single-process run's to f32 rounding (the 4 gradients are summed in another order
    than the single-process batch reduction; measured: loss 8e-8 relative, parameters 6e-8 absolute). Tolerances:
    loss rtol 1e-6; parameters atol 5e-7 after 3 AdamW steps of lr 3e-3 (Adam's m/√v turns a relative
    gradient difference δ into about lr·δ per step)."""
    proc = start_job(tmp_path / "dp_train", "dp_train")     # the reference runs while the 4 ranks do
    want_losses, want_params = _single_process_training()
    ranks = finish_job(proc, tmp_path / "dp_train", "dp_train")
    for got in ranks:
        np.testing.assert_allclose(got["losses"], want_losses, rtol=1e-6)
        for i, p in enumerate(want_params):
            np.testing.assert_allclose(got[f"param_{i}"], p, rtol=0, atol=5e-7)
    for got in ranks[1:]:   # the replicas stay identical
        for i in range(len(want_params)):
            np.testing.assert_array_equal(got[f"param_{i}"], ranks[0][f"param_{i}"])


def test_world_of_one():
    """Without torchrun (a world of 1): the fixed sync is the identity, the layer is the single-process layer,
    and a step is a plain step; meshes without the needed axes are DistributedErrors."""
    from tessera import dist, gdn
    mesh = dist.mesh(axes=("dp", "mp"), shape=(1, 1))
    grads = W.rank_gradients(0)
    for g, s in zip(grads, gdn.optimized_gradient_sync(grads, mesh)):
        np.testing.assert_array_equal(g, s)
    x, prev, gates, params = W.layer_inputs()
    want, _ = _single_process_layer()
    np.testing.assert_allclose(gdn.distributed_gdn_layer(x, prev, gates, params, mesh), want, rtol=1e-6, atol=1e-6)
    with pytest.raises(dist.DistributedError, match="axes 'dp' and 'mp'"):
        gdn.distributed_gdn_layer(x, prev, gates, params, dist.mesh(axes=("dp",), shape=(1,)))
    with pytest.raises(dist.DistributedError, match="no axis 'tp'"):
        gdn.optimized_gradient_sync(grads, mesh, "tp")
