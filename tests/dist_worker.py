"""One rank of tests/test_dist.py's multi-process runs (started by `tessera run --nproc 4` or torchrun).

`dist_worker.py OUT SCENARIO`: every rank writes OUT/rank<R>.json with what it computed (arrays as nested
lists; bf16 as f32 values) or the DistributedError it got; the test compares against NumPy references.
Scenarios: basic (collectives, shard, contexts, pipeline, @ts.distribute, a compiled @ts.function), raise
(rank 2 raises), kill (rank 1 kills itself with SIGKILL), hang (rank 3 sleeps past the timeout).
"""
import json
import os
import sys
import time

import ml_dtypes
import numpy as np

import tessera as ts
from tessera import dist

OUT, SCENARIO = sys.argv[1], sys.argv[2]
results = {}


def record(name, value):
    if isinstance(value, np.ndarray):
        value = {"dtype": str(value.dtype), "shape": list(value.shape),
                 "values": value.astype(np.float64).tolist()}
    results[name] = value


def finish():
    with open(os.path.join(OUT, f"rank{os.environ['RANK']}.json"), "w") as f:
        json.dump(results, f)


def rank_input(rank, dtype=np.float32, shape=(4, 6)):
    """The input the test recomputes for each rank: distinct values per rank, exact in bf16."""
    base = np.arange(np.prod(shape), dtype=np.float32).reshape(shape) - 7.0
    return (base * (rank + 1) / 4.0).astype(dtype)


def basic():
    import torch
    mesh = dist.mesh(axes=("dp", "tp"), shape=(2, 2))
    rank = mesh.rank()
    record("mesh", {"size": mesh.size(), "dp_size": mesh.size("dp"), "tp_size": mesh.size("tp"), "rank": rank,
                    "dp": mesh.rank("dp"), "tp": mesh.rank("tp"), "axes": list(mesh.axes), "shape": list(mesh.shape),
                    "is_mesh": isinstance(mesh, dist.Mesh)})
    x = rank_input(rank)
    for op in ("sum", "mean", "max", "min"):
        for axis in ("dp", "tp"):
            record(f"all_reduce_{op}_{axis}", dist.all_reduce(x, op=op, axis=axis))
    xb = rank_input(rank, ml_dtypes.bfloat16)
    out = dist.all_reduce(xb, op="sum", axis="dp")
    record("all_reduce_bf16_kind", type(out).__name__ + " " + str(out.dtype))
    record("all_reduce_sum_dp_bf16", out)
    xt = torch.from_numpy(x.copy())
    out_t = dist.all_reduce(xt, op="max", axis="tp")
    record("all_reduce_torch_kind", type(out_t).__name__)
    record("all_reduce_max_tp_torch", out_t.numpy())
    record("input_unchanged", bool(np.array_equal(xt.numpy(), x)))
    xtb = torch.from_numpy(rank_input(rank).copy()).to(torch.bfloat16)
    record("all_reduce_sum_tp_torch_bf16", dist.all_reduce(xtb, op="sum", axis="tp").float().numpy())
    for dim in (0, 1):
        record(f"all_gather_tp_dim{dim}", dist.all_gather(x, axis="tp", dim=dim))
    record("all_gather_dp_bf16", dist.all_gather(xb, axis="dp", dim=0))
    record("all_gather_dp_torch", dist.all_gather(xt, axis="dp", dim=1).numpy())
    record("reduce_scatter_dp_dim0", dist.reduce_scatter(x, op="sum", axis="dp", dim=0))
    record("reduce_scatter_tp_dim1", dist.reduce_scatter(x, op="sum", axis="tp", dim=1))
    record("reduce_scatter_tp_bf16", dist.reduce_scatter(xb, op="sum", axis="tp", dim=0))
    try:
        dist.reduce_scatter(rank_input(rank, shape=(3, 2)), op="sum", axis="tp", dim=0)
        record("reduce_scatter_uneven", "no error")
    except dist.DistributedError as e:
        record("reduce_scatter_uneven", str(e))
    try:   # ranks of tp disagree on the shape: named, not a hang or garbage
        dist.all_gather(rank_input(rank, shape=(2 + mesh.rank("tp"), 2)), axis="tp")
        record("all_gather_mismatch", "no error")
    except dist.DistributedError as e:
        record("all_gather_mismatch", str(e))
    record("broadcast_dp_src1", dist.broadcast(x, src=1, axis="dp"))
    record("broadcast_tp_src0_torch_bf16", dist.broadcast(xtb, src=0, axis="tp").float().numpy())
    full = np.arange(8 * 3, dtype=np.float32).reshape(8, 3)
    record("shard_dp_0", dist.shard(full, axis=0, mesh_axis="dp"))
    record("shard_tp_1", dist.shard(full.T.copy(), axis=1, mesh_axis="tp"))
    try:
        dist.shard(np.zeros((3, 2)), axis=0, mesh_axis="dp")
        record("shard_uneven", "no error")
    except dist.DistributedError as e:
        record("shard_uneven", str(e))

    # contexts
    with dist.tensor_parallel("tp"):
        record("current_axis", dist.current_axis())
        record("all_reduce_current_axis", dist.all_reduce(x, op="sum"))
        with dist.device_assignment(1):
            record("assigned", [dist.assigned_rank(), dist.is_assigned_rank()])
            record("broadcast_assigned", dist.broadcast(x))
    ran = []
    for stage in range(mesh.size("dp")):
        with dist.pipeline_stage(stage, axis="dp"):
            ran.append(stage)
    record("stages_run", ran)

    # pipeline along "dp" as the stage axis: stage 0 makes a value, stage 1 receives it
    current = np.full((2, 3), -1.0, np.float32)
    with dist.pipeline_stage(0, axis="dp"):
        current = x[:2, :3] * 2.0
    current = dist.send_to_next_stage(current, axis="dp")
    with dist.pipeline_stage(1, axis="dp"):
        current = current + 1.0
    record("pipeline_result", current)
    if mesh.rank("tp") == 0:
        if mesh.rank("dp") == 0:
            dist.send(x[:1], dst=1, axis="dp")
        else:
            record("recv_torch_kind", type(dist.recv(src=0, axis="dp", like=xt)).__name__)
    if mesh.rank("tp") == 0:
        if mesh.rank("dp") == 0:
            dist.send(xb[:1], dst=1, axis="dp")
        else:
            record("recv_bf16", dist.recv(src=0, axis="dp"))

    # @ts.distribute on a function and a class
    other = dist.mesh(axes=("all",), shape=(4,))
    record("default_mesh_is_last", dist.current_mesh() is other)

    @ts.distribute(mesh=mesh)
    def summed(v):
        return dist.all_reduce(v, op="sum", axis="dp"), dist.current_mesh() is mesh
    value, bound = summed(x)
    record("distribute_fn", value)
    record("distribute_fn_mesh", bound and dist.current_mesh() is other)

    @ts.distribute(mesh=mesh)
    class Trainer:
        def __init__(self, scale, mesh):
            self.scale, self.mesh = scale, mesh

        def step(self, v):
            return dist.all_reduce(v * self.scale, op="mean", axis="tp")
    trainer = Trainer(3.0)
    record("distribute_class_mesh", trainer.mesh is mesh)
    record("distribute_class", trainer.step(x))

    # a @ts.function calling a collective: one graph with a ts.all_reduce (no eager fallback)
    @ts.function
    def scaled_sum(v):
        return ts.multiply(dist.all_reduce(ts.add(v, 1.0), op="sum", axis="dp"), 0.5)
    on_mesh = ts.distribute(mesh=mesh)(scaled_sum)
    record("ts_function", np.asarray(on_mesh(x)))
    record("ts_function_again", np.asarray(on_mesh(x)))
    record("ts_function_eager_fallbacks", len(scaled_sum._eager))
    finish()


def fault(kind):
    mesh = dist.mesh(axes=("dp", "tp"), shape=(2, 2))
    rank = mesh.rank()
    x = rank_input(rank)
    dist.all_reduce(x, op="sum", axis="dp")   # a first collective everyone completes
    start = time.monotonic()
    try:
        if kind == "raise" and rank == 2:
            raise ZeroDivisionError("rank 2 divides by zero on purpose")
        if kind == "kill" and rank == 1:
            os.kill(os.getpid(), 9)
        if kind == "hang" and rank == 3:
            time.sleep(float(os.environ["TESSERA_DIST_TIMEOUT"]) * 4)
        for _ in range(3):
            x = dist.all_reduce(x, op="sum", axis="dp")
            x = dist.all_reduce(x, op="max", axis="tp")
        dist.all_gather(x, axis="dp")
        dist.all_gather(x, axis="tp")
        record("error", None)
    except dist.DistributedError as e:
        record("error", str(e))
        record("ranks", list(e.ranks))
        record("seconds", time.monotonic() - start)
        finish()
        raise
    finish()


if SCENARIO == "basic":
    basic()
elif SCENARIO == "world1":
    m = dist.mesh(axes=("dp", "tp"), shape=(1, 1))
    v = np.arange(6, dtype=np.float32).reshape(2, 3)
    record("sizes", [m.size(), m.size("dp"), m.rank(), m.rank("tp")])
    record("all_reduce", dist.all_reduce(v, op="mean", axis="dp"))
    record("all_gather", dist.all_gather(v, axis="tp", dim=1))
    record("broadcast", dist.broadcast(v, axis="dp"))
    record("torch_loaded", "torch" in sys.modules)
    try:
        dist.mesh(axes=("dp", "tp"), shape=(2, 2))
    except dist.DistributedError as e:
        record("too_big", str(e))
    os.environ.setdefault("RANK", "0")
    finish()
else:
    fault(SCENARIO)
