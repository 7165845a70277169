"""The deployment package tests/test_serve.py serves: the tiny seed-002 GDN LM compiled by
GDNProductionCompiler for the CPU at batch 1, 2, 4 and 8 with 16 tokens, saved with ts.DeploymentPackage
(monitoring hooks on), and a slowed deployment of it for the shutdown test."""
from __future__ import annotations

import os
import time

import tessera as ts
from tessera.gdn import GDNConfig, GDNProductionCompiler, ProductionGDNModel, init_params

TINY = dict(vocab_size=32, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
            max_delta_distance=1, delta_hidden_size=8, gating_hidden_size=8)
SEQ = 16


def build_package(directory, batch_sizes=(1, 2, 4, 8)):
    config = GDNConfig(**TINY)
    model = ProductionGDNModel(config).load_gdn_params(init_params(config, seed=0))
    variants = GDNProductionCompiler(target_architectures=["cpu"], export_formats=()).compile_gdn_model(
        model, {"input_ids": ["batch", SEQ], "attention_mask": ["batch", SEQ]}, batch_sizes=list(batch_sizes))
    package = ts.DeploymentPackage()
    for name, compiled in variants.items():
        package.add_variant(name=name, model=compiled, selection_criteria={"batch_size": compiled.batch_size})
    package.add_monitoring_hooks(collection_interval=1)
    return package.save(directory)


class SlowDeployment:
    """A deployed package whose every batch takes `delay_s` longer (requests stay in flight for SIGTERM)."""

    def __init__(self, deployed, delay_s):
        self._deployed, self.delay_s = deployed, delay_s
        self.name = deployed.name + "-slow"
        for k in ("max_batch_size", "max_sequence_length", "vocab_size", "monitor"):
            setattr(self, k, getattr(deployed, k))

    def variant_for(self, batch_size):
        return self._deployed.variant_for(batch_size)

    def inference(self, inputs):
        out = self._deployed.inference(inputs)
        time.sleep(self.delay_s)
        return out


def make_slow_model():
    return SlowDeployment(ts.deploy(model_name="tiny-gdn", package=os.environ["TESSERA_TEST_PACKAGE"]), 0.25)
