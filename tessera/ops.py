"""`ts.ops.*`: numerically careful helpers usable on tiles and scalars inside kernels
(and on tensors inside @ts.function bodies)."""
from __future__ import annotations

from .frontend.dsl import builtin as _b, module_getattr as _module_getattr

exp = _b("ops.exp")
log = _b("ops.log")
sqrt = _b("ops.sqrt")
tanh = _b("ops.tanh")
sigmoid = _b("ops.sigmoid")
sigmoid_safe = _b("ops.sigmoid_safe")
softmax = _b("ops.softmax")
softmax_safe = _b("ops.softmax_safe")
distance_scaling = _b("ops.distance_scaling")
distance_scaling_function = _b("ops.distance_scaling")
silu = _b("ops.silu")
relu = _b("ops.relu")
gating_function = _b("ops.gating_function")
delta_connection = _b("ops.delta_connection")
l2_norm = _b("ops.l2_norm")
embedding = _b("ops.embedding")
one_hot = _b("ops.one_hot")
dropout = _b("ops.dropout")
gating_network = _b("ops.gating_network")
mlp_gating = _b("ops.mlp_gating")
cross_entropy_loss = _b("ops.cross_entropy_loss")
l1_regularization = _b("ops.l1_regularization")
get_training_progress = _b("ops.get_training_progress")
learnable_scale_parameter = _b("ops.learnable_scale_parameter")
svd = _b("ops.svd")
transformer_layer = _b("ops.transformer_layer")


__getattr__ = _module_getattr("tessera.ops")
