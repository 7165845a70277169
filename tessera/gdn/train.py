"""`python -m tessera.gdn.train`: train the seed-002 GDN causal LM (a small config, delta connections on) on
a character corpus tessera generates (no download), with tessera's own autodiff and AdamW.

Each step: a batch of windows cut from the token stream, `autodiff.value_and_grad(causal_lm_loss)` (one
compiled forward + backward graph), gradient clipping and an AdamW step (compiled kernels). A progress bar
shows the loss and tokens/s; `--out DIR` saves weights and optimiser state as safetensors every
`--save-every` steps and at the end, and `--resume` continues from DIR's checkpoint.

    python -m tessera.gdn.train --steps 200 --out runs/tiny
    python -m tessera.gdn.train --steps 100 --out runs/tiny --resume
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

import numpy as np

# The generated corpus: sentences from a small grammar, so that a tiny model has something to learn
# (spelling, word order) and its loss falls well below log(vocab) within a few hundred steps.
_SUBJECTS = ["the cat", "a dog", "the bird", "my friend", "the old man", "a child", "the teacher", "our team"]
_VERBS = ["sees", "likes", "finds", "follows", "helps", "watches", "calls", "meets"]
_OBJECTS = ["the ball", "a red box", "the river", "the garden", "a small house", "the moon", "a book", "the road"]
_ENDINGS = [".", " today.", " again.", " at night.", " in the rain."]


def corpus(n_sentences=2000, seed=0) -> str:
    rng = np.random.default_rng(seed)
    pick = lambda xs: xs[int(rng.integers(len(xs)))]   # noqa: E731
    return " ".join(f"{pick(_SUBJECTS)} {pick(_VERBS)} {pick(_OBJECTS)}{pick(_ENDINGS)}" for _ in range(n_sentences))


class CharTokenizer:
    def __init__(self, text):
        self.chars = sorted(set(text))
        self.index = {c: i for i, c in enumerate(self.chars)}

    @property
    def vocab_size(self):
        return len(self.chars)

    def encode(self, text):
        return np.array([self.index[c] for c in text], np.int32)

    def decode(self, ids):
        return "".join(self.chars[int(i)] for i in ids)


def small_config(vocab_size):
    from .model import GDNConfig
    return GDNConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_delta_distance=1, delta_hidden_size=16, gating_hidden_size=8,
                     use_attention_deltas=False)


class Trainer:
    """The training loop: state (params, optimiser, step, data position) and checkpoints."""

    def __init__(self, config, tokens, batch=8, seq=32, lr=3e-3, seed=0):
        from .. import optim
        from .model import init_params
        self.config, self.tokens, self.batch, self.seq = config, tokens, batch, seq
        self.params = init_params(config, seed=seed)
        self.opt = optim.AdamW(self.params, lr=lr, weight_decay=0.01)
        self.step = 0
        self.rng = np.random.default_rng(seed + 1)
        from ..autodiff import value_and_grad
        from .model import causal_lm_loss
        self.value_and_grad = value_and_grad(causal_lm_loss, argnums=2)

    def batch_at(self):
        starts = self.rng.integers(0, len(self.tokens) - self.seq - 1, self.batch)
        windows = np.stack([self.tokens[s:s + self.seq + 1] for s in starts])
        return windows[:, :-1], windows[:, 1:]

    def train_step(self):
        from .. import optim
        inputs, targets = self.batch_at()
        loss, grads = self.value_and_grad(inputs, targets, self.params, self.config)
        optim.clip_grad_norm_(grads, max_norm=1.0)
        self.opt.step(grads)
        self.step += 1
        return float(loss), inputs.size

    # -- checkpoints (safetensors) ----------------------------------------------------------------
    def save(self, directory):
        from safetensors.numpy import save_file
        from .model import param_names
        os.makedirs(directory, exist_ok=True)
        tensors = {f"params.{n}": p for n, p in zip(param_names(self.config), self.params)}
        state = self.opt.state_dict()
        for key, arrays in state.items():
            if isinstance(arrays, list):
                tensors.update({f"optim.{key}.{i}": np.ascontiguousarray(a) for i, a in enumerate(arrays)})
        meta = {"step": str(self.step), "config": json.dumps(dataclasses.asdict(self.config)),
                "optim": json.dumps({k: v for k, v in state.items() if not isinstance(v, list)}),
                "rng": json.dumps(self.rng.bit_generator.state)}
        tmp = os.path.join(directory, "checkpoint.safetensors.tmp")
        save_file(tensors, tmp, metadata=meta)
        os.replace(tmp, os.path.join(directory, "checkpoint.safetensors"))   # never a half-written checkpoint

    def load(self, directory):
        from safetensors import safe_open
        from .model import param_names
        path = os.path.join(directory, "checkpoint.safetensors")
        with safe_open(path, framework="numpy") as f:
            meta = f.metadata()
            if json.loads(meta["config"]) != dataclasses.asdict(self.config):
                raise ValueError(f"{path} holds another model configuration")
            for p, n in zip(self.params, param_names(self.config)):
                p[...] = f.get_tensor(f"params.{n}")
            state = json.loads(meta["optim"])
            buffers = {}
            for key in f.keys():
                if key.startswith("optim."):   # optim.<state buffer>.<parameter index>
                    _, name, i = key.rsplit(".", 2)
                    buffers.setdefault(name, {})[int(i)] = f.get_tensor(key)
            for name, items in buffers.items():
                state[name] = [items[i] for i in range(len(items))]
        self.opt.load_state_dict(state)
        self.step = int(meta["step"])
        self.rng.bit_generator.state = json.loads(meta["rng"])


def _bar(done, total, width=24):
    n = int(width * done / max(total, 1))
    return "[" + "#" * n + "." * (width - n) + "]"


def train(steps=200, out=None, resume=False, save_every=100, batch=8, seq=32, lr=3e-3, seed=0, log=sys.stdout):
    """Train and return (first loss, last loss, trainer); the loss printed is a running mean over 10 steps."""
    text = corpus(seed=seed)
    tok = CharTokenizer(text)
    trainer = Trainer(small_config(tok.vocab_size), tok.encode(text), batch, seq, lr, seed)
    if resume:
        if out is None or not os.path.exists(os.path.join(out, "checkpoint.safetensors")):
            raise SystemExit(f"--resume: no checkpoint in {out!r}")
        trainer.load(out)
        print(f"resumed from {out} at step {trainer.step}", file=log)
    first = last = None
    recent = []
    start_step, t0, tokens = trainer.step, time.perf_counter(), 0
    interactive = hasattr(log, "isatty") and log.isatty()
    for k in range(steps):
        loss, n = trainer.train_step()
        if k == 0:   # tokens/s from the second step on: the first one compiles the graphs
            t0 = time.perf_counter()
        else:
            tokens += n
        recent = (recent + [loss])[-10:]
        first = loss if first is None else first
        last = sum(recent) / len(recent)
        tps = tokens / max(time.perf_counter() - t0, 1e-9)
        speed = f"{tps:8.0f} tok/s" if tokens else "(compiled the step)"
        line = f"{_bar(k + 1, steps)} step {trainer.step:5d}  loss {last:.3f}  {speed}"
        if interactive:
            print("\r" + line, end="", file=log, flush=True)
        elif (k + 1) % max(1, steps // 10) == 0 or k == 0:
            print(line, file=log, flush=True)
        if out is not None and save_every and (trainer.step - start_step) % save_every == 0:
            trainer.save(out)
    if interactive:
        print(file=log)
    if out is not None:
        trainer.save(out)
        print(f"checkpoint: {os.path.join(out, 'checkpoint.safetensors')} (step {trainer.step})", file=log)
    return first, last, trainer


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tessera.gdn.train", description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--out", default=None, help="checkpoint directory (safetensors)")
    ap.add_argument("--resume", action="store_true", help="continue from --out's checkpoint")
    ap.add_argument("--save-every", type=int, default=100)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    first, last, _ = train(a.steps, a.out, a.resume, a.save_every, a.batch, a.seq, a.lr, a.seed)
    print(f"loss {first:.3f} -> {last:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
