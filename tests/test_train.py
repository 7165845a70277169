"""Training the seed-002 causal LM (issue 12, Deliver 5): `python -m tessera.gdn.train` on the generated corpus
with tessera's autodiff and AdamW; the loss falls by a stated margin (a real optimisation: a model that
learns nothing stays near log(vocab)); a run resumed from its safetensors checkpoint continues exactly as an
uninterrupted one."""
import io
import math
import subprocess
import sys

import numpy as np
import pytest

from tessera.gdn import train as tr


def test_loss_falls():
    log = io.StringIO()
    first, last, trainer = tr.train(steps=40, log=log)
    vocab = trainer.config.vocab_size
    assert abs(first - math.log(vocab)) < 0.5          # an untrained model guesses uniformly
    assert last < first - 1.0, log.getvalue()          # stated margin: at least 1 nat in 40 steps
    assert "tok/s" in log.getvalue() and "loss" in log.getvalue()


def test_resume_continues_exactly(tmp_path):
    straight = tr.train(steps=6, log=io.StringIO())[2]
    tr.train(steps=3, out=str(tmp_path), log=io.StringIO())
    resumed = tr.train(steps=3, out=str(tmp_path), resume=True, log=io.StringIO())[2]
    assert resumed.step == straight.step == 6
    for a, b in zip(resumed.params, straight.params):
        np.testing.assert_array_equal(a, b)


def test_command_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "tessera.gdn.train", "--steps", "3", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "checkpoint.safetensors").exists() and "loss" in out.stdout


@pytest.mark.parametrize("layers, heads, vocab, hidden, inter", [(3, 2, 20, 16, 24), (6, 1, 12, 8, 8)])
def test_benchmark_numpy_twin_has_tesseras_gradient(layers, heads, vocab, hidden, inter):
    """benchmarks/training_step.py compares against a NumPy forward + backward of the LM: it must compute the
    same loss and gradient (f64) for the comparison to mean anything. The deeper config's gradient graph has
    over a thousand temporaries (it once ran with two sharing a slot)."""
    import pathlib
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks"))
    import numpy_lm
    from tessera import autodiff
    from tessera.gdn import GDNConfig, causal_lm_loss, init_params
    c = GDNConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                  intermediate_size=inter, max_delta_distance=2, delta_hidden_size=8 if hidden > 8 else 4,
                  gating_hidden_size=4, use_attention_deltas=False)
    params = init_params(c, seed=5, dtype=np.float64)
    rng = np.random.default_rng(6)
    ids, targets = (rng.integers(0, c.vocab_size, (2, 5)).astype(np.int32) for _ in range(2))
    loss, grads = numpy_lm.loss_and_grads(ids, targets, params, c)
    want_loss, want = autodiff.value_and_grad(causal_lm_loss, argnums=2)(ids, targets, params, c)
    assert abs(loss - float(want_loss)) < 1e-12
    for g, w in zip(grads, want):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-13)
