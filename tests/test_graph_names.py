"""Graph-level names the seeds use (issue 11, Deliver 3): ts.zeros / ts.ones / ts.arange / ts.softmax /
ts.diag, with NumPy's semantics, on the CPU backend against NumPy and through the NVIDIA path in the
PTX emulator."""
import numpy as np
import pytest

import tessera as ts
from test_nvidia_compile import _have_ptxas


@ts.function
def uses_the_names(x: ts.Tensor["N", ts.f32]):
    w = ts.softmax(-ts.arange(4, dtype=ts.f32))          # seed 000: layer weights
    mask = ts.cast(ts.zeros([4, 4], dtype=ts.bool), ts.f32)
    d = ts.diag(x)                                       # seed 000: sigma_diag = ts.diag(sigma)
    odd = ts.cast(ts.arange(1, 8, 2), ts.f32)
    return ts.sum(d * w, axis=0) + ts.diag(d) + ts.ones([4]) + ts.sum(mask, axis=0) + odd


def _want(x):
    w = np.exp(-np.arange(4.0))
    w /= w.sum()
    return (np.diag(x) * w).sum(0) + x + 1 + np.arange(1, 8, 2)


def test_names_on_the_cpu():
    x = np.array([1.0, -2.0, 3.5, 4.0], np.float32)
    np.testing.assert_allclose(uses_the_names(x), _want(x), rtol=1e-6, atol=1e-6)


@pytest.mark.skipif(not _have_ptxas(), reason="ptxas not found (the NVIDIA stages need it)")
def test_names_in_the_emulator(monkeypatch):
    monkeypatch.setenv("TESSERA_BACKEND", "emu")
    monkeypatch.setenv("TESSERA_EMU_ARCH", "sm_80")
    x = np.array([1.0, -2.0, 3.5, 4.0], np.float32)
    np.testing.assert_allclose(uses_the_names(x), _want(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("body,needle", [
    (lambda x: ts.zeros([4, -1]) + x, "positive ints"),
    (lambda x: ts.arange(3, 3) + x, "is empty"),
    (lambda x: ts.diag(ts.zeros([2, 3])) + x, "a vector or a square matrix"),
])
def test_bad_arguments_are_located(body, needle):
    @ts.function
    def bad(x: ts.Tensor["N", ts.f32]):
        return body(x)
    with pytest.raises(ts.CompilationError, match=needle):
        bad(np.zeros(4, np.float32))
