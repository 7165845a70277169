"""A real compiled stand-in for tessera.DeployedModel (its serving interface) for tests/test_serve.py, until
ts.deploy lands: the tiny seed-002 GDN LM (tessera.gdn.compiled_lm.CompiledGDNLM) behind power-of-two batch
"variants". A call pads the batch up to its variant's size and left-pads every row to max_sequence_length with a
padding mask, so only two graphs per variant ever compile (plain and padded), then cuts the rows and positions
asked for back out."""
from __future__ import annotations

import time

import numpy as np

from tessera.errors import TesseraError
from tessera.gdn.compiled_lm import CompiledGDNLM
from tessera.gdn.model import GDNConfig

TINY = dict(vocab_size=32, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
            max_delta_distance=1, delta_hidden_size=8, gating_hidden_size=8)


class TinyDeployedModel:
    def __init__(self, name="tiny-gdn", variants=(1, 2, 4, 8), max_sequence_length=16, delay_s=0.0, seed=0):
        self.name = name
        self.variants = tuple(sorted(variants))
        self.max_batch_size = self.variants[-1]
        self.max_sequence_length = max_sequence_length
        self.lm = CompiledGDNLM(GDNConfig(**TINY), seed=seed)
        self.vocab_size = self.lm.config.vocab_size
        self.delay_s = delay_s          # extra time per call, to keep requests in flight in the shutdown test

    def variant_for(self, batch_size: int) -> str:
        for v in self.variants:
            if batch_size <= v:
                return f"b{v}"
        raise TesseraError(f"batch {batch_size} > max_batch_size {self.max_batch_size}")

    def inference(self, inputs: dict) -> dict:
        ids = np.asarray(inputs["input_ids"], np.int32)
        B, S = ids.shape
        V, L = int(self.variant_for(B)[1:]), self.max_sequence_length
        mask = inputs.get("attention_mask")
        full_ids = np.zeros((V, L), np.int32)
        full_mask = np.ones((V, L), np.int32)          # the filler rows are dummy all-real rows
        full_ids[:B, L - S:] = ids
        full_mask[:B, :L - S] = 0
        full_mask[:B, L - S:] = 1 if mask is None else np.asarray(mask)
        logits = self.lm(full_ids, attention_mask=None if full_mask.all() else full_mask)
        if self.delay_s:
            time.sleep(self.delay_s)
        return {"logits": np.asarray(logits)[:B, L - S:]}


def make_model():
    return TinyDeployedModel()


def make_slow_model():
    return TinyDeployedModel(name="tiny-gdn-slow", delay_s=0.25)
