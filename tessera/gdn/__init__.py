"""The GDN library written with the DSL (seed components with NumPy references)."""
from .gating import gating_function_kernel, gating_function_reference  # noqa: F401
from .functions import (delta_connection, gating_function, distance_scaling_function,  # noqa: F401
                        multi_scale_delta_aggregation, safe_delta_computation, stable_gating_computation,
                        mixed_precision_gdn_layer, attention_based_delta_selection, dynamic_delta_pruning,
                        global_l2_norm, adaptive_gating_mechanism)
from . import reference  # noqa: F401
from .model import (GDNConfig, causal_lm_forward, causal_lm_forward_padded, causal_lm_loss, init_params,  # noqa: F401
                    padding_key_bias, param_names)
from .kernels import fused_delta_gating_kernel, sparse_delta_computation_kernel  # noqa: F401
from .early_exit import ExitLayer, adaptive_gdn_with_early_exit  # noqa: F401
from .compression import compressed_delta_storage, reconstruct_compressed_delta, jacobi_svd  # noqa: F401
from .training import (ProgressiveDeltaTraining, MaskedDeltaLM, masked_causal_lm_forward,  # noqa: F401
                       adaptive_delta_loss, adaptive_loss_with_exit_penalty, gradient_checkpointing_strategy)
from .delta_backward import (optimized_delta_backward, compute_delta_gradient, delta_chain_forward,  # noqa: F401
                             delta_chain_loss, efficient_gradient_accumulation_kernel, accumulate_gradients)
from .checkpointing import memory_efficient_gdn_layer, delta_layer_with_checkpointing  # noqa: F401
from . import reference_training  # noqa: F401
from .compiled_lm import CompiledGDNLM, ParameterInfo  # noqa: F401
from .distributed import optimized_gradient_sync, distributed_gdn_layer, data_parallel_step  # noqa: F401
from .distributed_training import DistributedGDNTraining, stage_layers  # noqa: F401
from .modules import TesseraGDNModel, ProductionGDNModel, DeltaNetwork, GDNLayer  # noqa: F401
from ..production.gdn_compiler import GDNProductionCompiler  # noqa: F401,E402
