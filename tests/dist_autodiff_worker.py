"""One rank of tests/test_dist_autodiff.py's 4-process run (`tessera run --nproc 4`): @ts.functions that
call collectives, compiled to one graph each and differentiated, on a dp × tp = 2 × 2 mesh (rank r has
dp = r // 2, tp = r % 2). Every rank writes OUT/rank<R>.json with what it computed; the test compares
against single-process NumPy results.

`dist_autodiff_worker.py OUT`; `dist_autodiff_worker.py OUT world1` runs the single-process checks (a world
of 1: the cache key's mesh, the error for max) and writes OUT/world1.json. The data are the same on every rank (one fixed seed); each rank takes its
part. All ranks call the same functions in the same order (the collectives must match up)."""
import json
import os
import sys

import numpy as np

import tessera as ts
from tessera import autodiff, dist

OUT = sys.argv[1]
results = {}


def record(name, value):
    if isinstance(value, (np.ndarray, float, np.floating)):
        value = np.asarray(value, dtype=np.float64)
        value = {"shape": list(value.shape), "values": value.ravel().tolist()}
    results[name] = value


def data():
    """The full single-process arrays (tests/test_dist_autodiff.py makes the same ones)."""
    rng = np.random.default_rng(14)
    return {"x": rng.standard_normal((4, 6)), "X": rng.standard_normal((8, 3)), "Y": rng.standard_normal((8, 2)),
            "W": rng.standard_normal((3, 2)), "A": rng.standard_normal((5, 3)), "V": rng.standard_normal((3, 4)),
            "C": rng.standard_normal((5, 4)), "P": rng.standard_normal((4, 6)), "Q": rng.standard_normal((6, 4))}


def main():
    mesh = dist.mesh(axes=("dp", "tp"), shape=(2, 2))
    rank, dp, tp = mesh.rank(), mesh.rank("dp"), mesh.rank("tp")
    d = data()

    # (a) forward: every collective in one graph
    @ts.function
    def collectives(x):
        summed = dist.all_reduce(x, op="sum", axis="dp")
        gathered = dist.all_gather(x * 2.0, axis="tp", dim=1)
        scattered = dist.reduce_scatter(x, op="sum", axis="tp", dim=0)
        from_one = dist.broadcast(x + 1.0, src=1, axis="dp")
        return summed, gathered, scattered, from_one

    x = d["x"] * (rank + 1)
    outs = collectives(x)
    for name, value in zip(("all_reduce", "all_gather", "reduce_scatter", "broadcast"), outs):
        record(name, np.asarray(value))
    record("eager_fallbacks", len(collectives._eager))
    record("ts_opt", ts.compile(collectives, x).asm["ts.opt"])

    # (b) data parallel: each rank's loss on its half of the batch, all-reduced (mean) over dp
    def local_loss(w, xs, ys):
        err = xs @ w - ys
        return ts.mean(err * err)

    @ts.function
    def dp_loss(w, xs, ys):
        return dist.all_reduce(local_loss(w, xs, ys), op="mean", axis="dp")

    @ts.function
    def dp_loss_replicated_w(w, xs, ys):   # the parameter's gradient all-reduce inside the graph
        return dist.all_reduce(local_loss(dist.all_reduce(w, op="mean", axis="dp"), xs, ys), op="mean", axis="dp")

    xs, ys = d["X"][4 * dp:4 * dp + 4], d["Y"][4 * dp:4 * dp + 4]
    loss, grad = autodiff.value_and_grad(dp_loss)(d["W"], xs, ys)
    record("dp_loss", np.asarray(loss))
    record("dp_grad", np.asarray(grad))
    record("dp_grad_allreduced", np.asarray(dist.all_reduce(np.asarray(grad), op="mean", axis="dp")))
    loss2, grad2 = autodiff.value_and_grad(dp_loss_replicated_w)(d["W"], xs, ys)
    record("dp_in_graph_loss", np.asarray(loss2))
    record("dp_in_graph_grad", np.asarray(grad2))

    # (b) tensor parallel, column-parallel: V's columns sharded over tp, outputs all-gathered; the loss,
    # replicated over tp, is divided by n_tp (the gradient is that of the sum over ranks)
    @ts.function
    def tp_columns(v, a, c):
        y = dist.all_gather(a @ v, axis="tp", dim=1)
        return ts.sum(y * y * c) / 2.0

    v_part = d["V"][:, 2 * tp:2 * tp + 2]
    loss, grad = autodiff.value_and_grad(tp_columns)(v_part, d["A"], d["C"])
    record("tp_columns_loss", np.asarray(loss))
    record("tp_columns_grad", np.asarray(grad))

    # (b) tensor parallel, row-parallel: P's columns and Q's rows sharded over tp, partial products
    # reduce-scattered (each rank's loss is its own columns of P @ Q)
    @ts.function
    def tp_rows(q, p):
        z = dist.reduce_scatter(p @ q, op="sum", axis="tp", dim=1)
        return ts.sum(z * z)

    q_part, p_part = d["Q"][3 * tp:3 * tp + 3], d["P"][:, 3 * tp:3 * tp + 3]
    loss, grad = autodiff.value_and_grad(tp_rows)(q_part, p_part)
    record("tp_rows_loss", np.asarray(loss))
    record("tp_rows_grad", np.asarray(grad))

    # broadcast: the gradient reaches src only (the sum of every rank's cotangent)
    @ts.function
    def from_src(x, c):
        return ts.sum(dist.broadcast(x, src=1, axis="dp") * c)

    c = d["x"] * (rank - 1.5)
    record("broadcast_grad", np.asarray(autodiff.grad(from_src)(d["x"] * (rank + 1), c)))

    # (c) central finite differences of the distributed scalar (the sum over all ranks of each rank's
    # result): rank 3's input perturbed, every rank evaluates
    def world_sum(value):
        s = dist.all_reduce(np.asarray(value, dtype=np.float64).reshape(1), op="sum", axis="dp")
        return float(dist.all_reduce(s, op="sum", axis="tp")[0])

    eps = 1e-6
    checks = {"dp_loss": (dp_loss, [d["W"], xs, ys]), "tp_columns": (tp_columns, [v_part, d["A"], d["C"]]),
              "from_src": (from_src, [d["x"] * (rank + 1), c]), "tp_rows": (tp_rows, [q_part, p_part])}
    for name, (fn, args) in checks.items():
        grad = np.asarray(autodiff.grad(fn)(*args))
        fd, analytic = [], []
        for index in [(0, 0), (1, 1), (2, 0)]:
            values = []
            for sign in (1.0, -1.0):
                moved = [a.copy() for a in args]
                if rank == 3:
                    moved[0][index] += sign * eps
                values.append(world_sum(fn(*moved)))
            fd.append((values[0] - values[1]) / (2 * eps))
            analytic.append(grad[index])
        record(f"fd_{name}", np.array(fd))
        record(f"fd_{name}_grad", np.array(analytic))


def world1():
    x = data()["x"]

    @ts.function
    def total(v):
        return ts.sum(dist.all_reduce(v, op="max", axis="dp"))

    one = dist.mesh(axes=("dp",), shape=(1,))
    record("world1_value", float(np.asarray(ts.distribute(mesh=one)(total)(x)).reshape(())))
    other = dist.mesh(axes=("dp", "tp"), shape=(1, 1))
    ts.distribute(mesh=other)(total)(x)
    ts.distribute(mesh=one)(total)(x)
    record("graphs_per_mesh", len(total._compiled))   # one per mesh, the second call on `one` reuses its graph
    record("eager_fallbacks", len(total._eager))
    try:
        ts.distribute(mesh=one)(autodiff.grad(total))(x)
        record("max_grad_error", "")
    except ts.CompilationError as e:
        record("max_grad_error", str(e))

    # a body that makes its mesh current only while traced (as gdn.optimized_gradient_sync does): the
    # graph runs and is differentiated on that mesh, not on the one current at call time
    @ts.function
    def on_one(v):
        return ts.sum(dist.distribute(mesh=one)(lambda u: dist.all_reduce(u * u, op="sum", axis="dp"))(v))

    dist.mesh(axes=("pp",), shape=(1,))   # now the default mesh: it has no "dp" axis
    value, grad = autodiff.value_and_grad(on_one)(x)
    record("traced_mesh_value", float(np.asarray(on_one(x)).reshape(())))
    record("traced_mesh_grad_value", float(np.asarray(value).reshape(())))
    record("traced_mesh_grad", np.asarray(grad))


if len(sys.argv) > 2 and sys.argv[2] == "world1":
    world1()
    name = "world1"
else:
    main()
    name = f"rank{os.environ['RANK']}"
with open(os.path.join(OUT, f"{name}.json"), "w") as f:
    json.dump(results, f)
