"""torch at tessera's boundaries and tessera functions as torch ops (issue 13, Deliver 1-2; DESIGN §13):
zero-copy ts.from_torch / ts.to_torch (bf16 included), kernels and graph functions taking and returning
torch tensors, tessera.integrations.torch.op with autograd (gradcheck in f64, bf16 against torch autograd of
the same math), lists of tensors and bound Python values, and torch.compile(fullgraph=True) keeping the op
as one node. GPU variants are marked and skipped without a GPU."""
from __future__ import annotations

import subprocess
import sys

import ml_dtypes
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import tessera as ts  # noqa: E402
from tessera import tile  # noqa: E402
from tessera.integrations import torch as tst  # noqa: E402


def test_import_tessera_imports_neither_torch_nor_transformers():
    code = ("import sys, tessera, tessera.integrations; "
            "print('torch' in sys.modules, 'transformers' in sys.modules, 'mlir' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["False", "False", "False"]


# -- conversions ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.int32, torch.int64])
def test_from_torch_and_to_torch_share_memory(dtype):
    t = torch.arange(12).reshape(3, 4).to(dtype)
    a = ts.from_torch(t)
    assert a.shape == (3, 4)
    assert a.dtype == (ml_dtypes.bfloat16 if dtype == torch.bfloat16 else torch.empty(0, dtype=dtype).numpy().dtype)
    a[1, 2] = 100
    assert t[1, 2].item() == 100                       # the same memory, not a copy
    back = ts.to_torch(a)
    assert back.dtype == dtype
    back[0, 0] = 7
    assert t[0, 0].item() == 7


def test_from_torch_converts_dtype_and_rejects_non_tensors():
    t = torch.ones(2, 3, dtype=torch.float32)
    a = ts.from_torch(t, dtype=ts.bf16)
    assert a.dtype == ml_dtypes.bfloat16 and np.all(a.astype(np.float32) == 1)
    with pytest.raises(ts.DTypeError, match="takes a torch tensor"):
        ts.from_torch(np.ones(3))
    with pytest.raises(ts.DTypeError, match="tessera dtype"):
        ts.from_torch(t, dtype=np.float32)


@ts.kernel
def scale_kernel(x: tile.Tensor["N"], y: tile.Tensor["N"], BLOCK: ts.constexpr = 64):
    i = tile.program_id(0) * BLOCK
    tile.store(y[i:i + BLOCK], tile.load(x[i:i + BLOCK]) * 3.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_kernels_write_torch_outputs_in_place(dtype):
    x = torch.linspace(-2, 2, 200).to(dtype)
    y = torch.zeros(200, dtype=dtype)
    scale_kernel[(4,)](x, y)
    torch.testing.assert_close(y, (x.float() * 3).to(dtype))
    ck = ts.compile(scale_kernel, x, y)            # a compiled kernel's launch too
    y.zero_()
    ck[(4,)](x, y)
    torch.testing.assert_close(y, (x.float() * 3).to(dtype))


@ts.function
def mlp(x, w, b):
    return ts.sigmoid(x @ w + b) * x


def test_graph_functions_return_torch_tensors_when_given_them():
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((4, 8), (8, 8), (8,)))
    got = mlp(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b))
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), mlp(x, w, b), rtol=1e-6)
    ck = ts.compile(mlp, torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b))
    assert isinstance(ck(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)), torch.Tensor)
    # bf16 tensors in: the same result as the bf16 NumPy arrays give (the sigmoid's f32 promotes the product)
    xb, wb, bb = (torch.from_numpy(a).bfloat16() for a in (x, w, b))
    got = mlp(xb, wb, bb)
    want = mlp(*(a.astype(ml_dtypes.bfloat16) for a in (x, w, b)))
    assert got.dtype == ts.to_torch(want).dtype
    np.testing.assert_array_equal(got.float().numpy(), want.astype(np.float32))
    torch.testing.assert_close(got.float(), (torch.sigmoid(xb @ wb + bb) * xb).float(), rtol=2e-2, atol=2e-2)


# -- tessera functions as torch ops -----------------------------------------------------------------------

def test_op_forward_and_gradcheck_f64():
    f = tst.op(mlp)
    g = torch.Generator().manual_seed(1)
    x, w, b = (torch.randn(*s, dtype=torch.float64, generator=g, requires_grad=True) for s in ((4, 6), (6, 6), (6,)))
    torch.testing.assert_close(f(x, w, b), torch.sigmoid(x @ w + b) * x, rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(f, (x, w, b))


def test_op_bf16_gradients_agree_with_torch_autograd():
    """Stated tolerance: 3e-2 of the largest gradient element (bf16 has 8 bits of mantissa; tessera
    accumulates in f32 and rounds once, torch rounds per op)."""
    f = tst.op(mlp)
    g = torch.Generator().manual_seed(2)
    ours = [(torch.randn(*s, generator=g) * sc).bfloat16().requires_grad_() for s, sc in
            (((16, 32), 1.0), ((32, 32), 0.2), ((32,), 1.0))]
    ref = [t.detach().clone().requires_grad_() for t in ours]
    f(*ours).float().square().sum().backward()
    (torch.sigmoid(ref[0] @ ref[1] + ref[2]) * ref[0]).float().square().sum().backward()
    for a, r in zip(ours, ref):
        assert a.grad.dtype == torch.bfloat16
        err = (a.grad.float() - r.grad.float()).abs().max() / r.grad.float().abs().max()
        assert err < 3e-2, err


@ts.function
def weighted_sum(xs: list, scale):
    acc = xs[0] * scale
    for x in xs[1:]:
        acc = acc + x * scale
    return acc, ts.sum(acc)


def test_op_with_a_list_argument_a_bound_value_and_two_results():
    f = tst.op(weighted_sum, scale=0.5)
    xs = [torch.randn(3, 4, dtype=torch.float64, requires_grad=True) for _ in range(3)]
    acc, total = f(xs)
    assert acc.shape == (3, 4) and total.shape == ()
    torch.testing.assert_close(acc, sum(xs) * 0.5)
    (acc.square().sum() + 2 * total).backward()
    for x in xs:
        torch.testing.assert_close(x.grad, (sum(xs) * 0.5).detach() + 1.0)   # d/dx of acc² + 2·sum: acc + 1


def test_op_integer_inputs_get_no_gradient():
    @ts.function
    def embed(ids, table):
        return ts.ops.embedding(ids, table)

    f = tst.op(embed)
    ids = torch.tensor([[0, 2, 1]], dtype=torch.int32)
    table = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    out = f(ids, table)
    out.sum().backward()
    want = torch.zeros(4, 5, dtype=torch.float64)
    for i in (0, 2, 1):
        want[i] += 1
    torch.testing.assert_close(table.grad, want)


def test_op_rejects_python_values_with_a_clear_error():
    f = tst.op(weighted_sum)
    with pytest.raises(ts.TesseraError, match="bind other values with op"):
        f([torch.ones(2)], 0.5)


class _Model(torch.nn.Module):
    def __init__(self, f):
        super().__init__()
        self.f = f
        self.w = torch.nn.Parameter(torch.randn(8, 8) * 0.3)
        self.b = torch.nn.Parameter(torch.zeros(8))

    def forward(self, x):
        return self.f(torch.relu(x), self.w, self.b) * 2


def test_torch_compile_keeps_the_op_as_one_opaque_node():
    model = _Model(tst.op(mlp, name="mlp"))
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    compiled = torch.compile(model, fullgraph=True, backend=backend, dynamic=False)
    x = torch.randn(4, 8)
    torch.testing.assert_close(compiled(x), model(x))
    calls = [str(n.target) for n in graphs[0].graph.nodes if n.op == "call_function"]
    ours = [c for c in calls if c.startswith("tessera.")]
    assert len(ours) == 1 and ours[0].startswith("tessera.mlp_"), calls


def test_torch_compile_with_inductor_forward_and_backward():
    model = _Model(tst.op(mlp))
    compiled = torch.compile(model, fullgraph=True, dynamic=False)
    x = torch.randn(4, 8)
    out = compiled(x)
    out.sum().backward()
    got = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model(x).sum().backward()
    torch.testing.assert_close(out, model(x))
    for a, p in zip(got, model.parameters()):
        torch.testing.assert_close(a, p.grad)


@pytest.mark.gpu
def test_op_on_cuda_tensors():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    f = tst.op(mlp)
    x, w, b = (torch.randn(*s, device="cuda", requires_grad=True) for s in ((64, 64), (64, 64), (64,)))
    y = f(x, w, b)
    assert y.is_cuda
    torch.testing.assert_close(y, torch.sigmoid(x @ w + b) * x, rtol=1e-3, atol=1e-3)
    y.sum().backward()
    assert x.grad is not None and x.grad.is_cuda


def test_op_differentiates_only_the_inputs_that_require_grad():
    f = tst.op(mlp, name="frozen_mlp")
    x = torch.randn(4, 6, dtype=torch.float64)                       # data: no gradient wanted
    w = torch.randn(6, 6, dtype=torch.float64, requires_grad=True)
    b = torch.randn(6, dtype=torch.float64)                          # frozen
    f(x, w, b).sum().backward()
    assert w.grad is not None and x.grad is None and b.grad is None
    assert [floats for _, floats in f._vjps] == [(1,)]               # one gradient graph, w.r.t. w alone
    wr = w.detach().clone().requires_grad_()
    (torch.sigmoid(x @ wr + b) * x).sum().backward()
    torch.testing.assert_close(w.grad, wr.grad)


def test_op_is_shared_and_survives_copies():
    import copy
    import pickle
    f = tst.op(mlp)
    assert tst.op(mlp) is f and copy.deepcopy(f) is f
    assert pickle.loads(pickle.dumps(f)) is f
