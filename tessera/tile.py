"""`from tessera import tile`: the names used inside @ts.kernel bodies (DESIGN §4)."""
from __future__ import annotations

from .frontend.annotations import Tensor, constexpr  # noqa: F401
from .frontend.dsl import builtin as _b, Namespace as _Ns, module_getattr as _module_getattr

program_id = _b("tile.program_id")
num_programs = _b("tile.num_programs")
context = _b("tile.context")
range = _b("tile.range")  # noqa: A001 - the seeds' spelling
static_range = _b("tile.static_range")

load = _b("tile.load")
store = _b("tile.store")
load_block = _b("tile.load_block")
store_block = _b("tile.store_block")
store_global = _b("tile.store_global")
load_scalar = _b("tile.load_scalar")
alloc_shared = _b("tile.alloc_shared")
_cp_global = _b("tile.cp_async")
cp_async = _b("tile.cp_async", shared=_Ns("tile.cp_async.shared", global_=_cp_global))
cp_commit_group = _b("tile.cp_commit_group")
cp_wait_group = _b("tile.cp_wait_group")
barrier = _b("tile.barrier")
async_load_block = _b("tile.async_load_block")
async_wait = _b("tile.async_wait")
async_store_block = _b("tile.async_store_block")
load_shared = _b("tile.load_shared")
store_shared = _b("tile.store_shared")

mma = _b("tile.mma")
add = _b("tile.add")
subtract = _b("tile.subtract")
multiply = _b("tile.multiply")
divide = _b("tile.divide")
maximum = _b("tile.maximum")
minimum = _b("tile.minimum")
exp = _b("tile.exp")
log = _b("tile.log")
sqrt = _b("tile.sqrt")
sigmoid = _b("tile.sigmoid")
tanh = _b("tile.tanh")
abs = _b("tile.abs")  # noqa: A001
where = _b("tile.where")
cast = _b("tile.cast")
sum = _b("tile.sum")  # noqa: A001
max = _b("tile.max")  # noqa: A001
min = _b("tile.min")  # noqa: A001
softmax = _b("tile.softmax")
zeros = _b("tile.zeros")
full = _b("tile.full")
arange = _b("tile.arange")
fill = _b("tile.fill")
accumulate = _b("tile.accumulate")
apply_gating = _b("tile.apply_gating")
fused_gating_accumulate = _b("tile.fused_gating_accumulate")
compute_attention_score = _b("tile.compute_attention_score")


__getattr__ = _module_getattr("tessera.tile")
