"""The bad-input corpus (issue 11, Deliver 5): wrong programs and launches, each with the tessera error it
must raise at the user's line. `tests/bad_input_runner.py` runs them; `tests/test_bad_input_corpus.py`
checks the outcome (0 raw exceptions, 0 aborts, 0 hangs, 0 silently accepted).

A case is (name, expected error class name, source). The source is a module body run with this prelude;
its last statement raises. `K(body, params)` is not used: every kernel is written out, as a user would."""
from __future__ import annotations

PRELUDE = '''import numpy as np
import tessera as ts
from tessera import tile
def Z(*shape, dtype=np.float32):
    return np.zeros(shape, dtype)
'''

CE, DT, SH, LE, OR = "CompilationError", "DTypeError", "ShapeError", "LaunchError", "OutOfResources"


def _kernel(body, params='x: tile.Tensor["N", ts.f32], out: tile.Tensor["N", ts.f32]', launch="k[(1,)](Z(64), Z(64))"):
    lines = "\n".join("    " + ln for ln in body.strip("\n").splitlines())
    return f"@ts.kernel\ndef k({params}):\n{lines}\n\n{launch}\n"


# -- unsupported Python and wrong DSL use inside kernels: CompilationError at the line -----------------
_KERNEL_BODIES = [
    ("undefined_name", CE, "tile.store(out[0:8], tile.load(x[0:8]) + undefined_thing)"),
    ("while_loop", CE, "i = 0\nwhile i < 4:\n    i = i + 1"),
    ("try_except", CE, "try:\n    v = tile.load(x[0:8])\nexcept Exception:\n    pass"),
    ("with_statement", CE, "with open('f') as f:\n    pass"),
    ("lambda", CE, "f = lambda a: a + 1\ntile.store(out[0:8], f(tile.load(x[0:8])))"),
    ("list_comprehension", CE, "vals = [tile.load(x[i:i + 8]) for i in range(tile.program_id(0), 4)]"),
    ("dict_display", CE, "d = {'a': tile.load(x[0:8])}\ntile.store(out[0:8], d['a'])"),
    ("class_def", CE, "class C:\n    pass"),
    ("nested_def", CE, "def helper(a):\n    return a\ntile.store(out[0:8], helper(tile.load(x[0:8])))"),
    ("global_stmt", CE, "global G\nG = 1"),
    ("yield_in_kernel", CE, "yield 1"),
    ("starred_call", CE, "args = (x, 0)\ntile.store(out[0:8], tile.load(*args))"),
    ("runtime_python_call", CE, "import math\ntile.store(out[0:8], tile.zeros([8], ts.f32) + math.gamma(tile.program_id(0)))"),
    ("strided_slice", CE, "tile.store(out[0:8], tile.load(x[0:16:2]))"),
    ("runtime_slice_size", CE, "n = tile.program_id(0) + 8\ntile.store(out[0:8], tile.load(x[0:n]))"),
    ("empty_slice", CE, "tile.store(out[0:8], tile.load(x[4:4]))"),
    ("reversed_slice", CE, "tile.store(out[0:8], tile.load(x[8:0]))"),
    ("too_many_indices", CE, "tile.store(out[0:8], tile.load(x[0, 0:8]))"),
    ("float_index", CE, "tile.store(out[0:8], tile.load(x[0.5:8.5]))"),
    ("float_runtime_index", CE, "i = tile.program_id(0) * 1.5\ntile.store(out[0], tile.load(x[i]))"),
    ("load_of_scalar", CE, "tile.store(out[0:8], tile.load(3))"),
    ("load_of_tile", CE, "v = tile.zeros([8], ts.f32)\ntile.store(out[0:8], tile.load(v))"),
    ("store_tile_into_element", CE, "tile.store(out[0], tile.load(x[0:8]))"),
    ("store_shape_mismatch", CE, "tile.store(out[0:8], tile.load(x[0:16]))"),
    ("store_to_scalar", CE, "tile.store(3, tile.load(x[0:8]))"),
    ("tensor_as_value", CE, "tile.store(out[0:8], x + 1.0)"),
    ("view_as_value", CE, "tile.store(out[0:8], x[0:8] * 2.0)"),
    ("program_id_axis", CE, "tile.store(out[0:8], tile.zeros([8], ts.f32) + tile.program_id(3))"),
    ("program_id_runtime_axis", CE, "a = tile.program_id(0)\ntile.store(out[0:8], tile.zeros([8], ts.f32) + tile.program_id(a))"),
    ("num_programs_axis", CE, "tile.store(out[0:8], tile.zeros([8], ts.f32) + tile.num_programs(-1))"),
    ("break_in_static_range", CE, "for i in tile.static_range(4):\n    if i == 2:\n        break"),
    ("return_value", CE, "return tile.load(x[0:8])"),
    ("negative_runtime_step", CE, "for i in range(0, 8, -1):\n    tile.store(out[i], 1.0)"),
    ("zero_step", CE, "for i in range(0, 8, 0):\n    tile.store(out[i], 1.0)"),
    ("range_four_args", CE, "for i in range(0, 8, 1, 2):\n    pass"),
    ("iterate_runtime_scalar", CE, "for v in tile.program_id(0):\n    pass"),
    ("iterate_number", CE, "for v in 5:\n    pass"),
    ("is_on_runtime", CE, "p = tile.program_id(0)\nif p is None:\n    tile.store(out[0], 1.0)"),
    ("in_on_runtime", CE, "p = tile.program_id(0)\nif p in (1, 2):\n    tile.store(out[0], 1.0)"),
    ("loop_target_tuple_runtime", CE, "for a, b in range(tile.program_id(0)):\n    pass"),
    ("tile_if_condition", CE, "v = tile.load(x[0:8])\nif v > 0.0:\n    tile.store(out[0:8], v)"),
    ("shape_changes_in_loop", CE, "acc = tile.zeros([8], ts.f32)\nfor i in range(4):\n    acc = tile.zeros([16], ts.f32)\ntile.store(out[0:8], acc)"),
    ("scalar_to_tile_in_loop", CE, "acc = 0.0\nfor i in range(4):\n    acc = tile.load(x[0:8])\ntile.store(out[0:8], acc)"),
    ("shape_runtime_index", CE, "n = x.shape[tile.program_id(0)]"),
    ("shape_index_out_of_range", CE, "n = x.shape[5]"),
    ("unknown_attribute_tensor", CE, "n = x.strides"),
    ("unknown_attribute_tile", CE, "v = tile.load(x[0:8])\nw = v.data"),
    ("unknown_tile_name", CE, "tile.store(out[0:8], tile.frobnicate(x))"),
    ("unknown_keyword", CE, "tile.store(out[0:8], tile.load(x[0:8], foo=1))"),
    ("missing_argument", CE, "tile.store(out[0:8])"),
    ("too_many_positional", CE, "tile.store(out[0:8], tile.load(x[0:8]), None, 4)"),
    ("duplicate_keyword", CE, "tile.store(out[0:8], value=tile.load(x[0:8]), dst=out[0:8], mask=None, **{})"),
    ("cast_to_non_dtype", CE, "tile.store(out[0:8], tile.cast(tile.load(x[0:8]), 'float16'))"),
    ("cast_to_python_type", CE, "tile.store(out[0:8], tile.cast(tile.load(x[0:8]), float))"),
    ("where_shapes", CE, "v = tile.load(x[0:8])\ntile.store(out[0:8], tile.where(tile.load(x[0:4]) > 0.0, v, 0.0))"),
    ("binop_shapes", CE, "tile.store(out[0:8], tile.load(x[0:8]) + tile.load(x[0:4]))"),
    ("compare_with_string", CE, "v = tile.load(x[0:8])\ntile.store(out[0:8], tile.where(v > 'a', v, 0.0))"),
    ("reduce_axis_out_of_range", CE, "tile.store(out[0], tile.sum(tile.load(x[0:8]), axis=2))"),
    ("reduce_runtime_axis", CE, "tile.store(out[0], tile.sum(tile.load(x[0:8]), axis=tile.program_id(0)))"),
    ("reduce_of_scalar", CE, "tile.store(out[0], tile.sum(3.0))"),
    ("softmax_of_scalar", CE, "tile.store(out[0], tile.softmax(3.0))"),
    ("zeros_negative", CE, "tile.store(out[0:8], tile.zeros([-8], ts.f32))"),
    ("zeros_zero", CE, "tile.store(out[0:8], tile.zeros([0], ts.f32))"),
    ("zeros_runtime_shape", CE, "tile.store(out[0:8], tile.zeros([tile.program_id(0)], ts.f32))"),
    ("zeros_float_shape", CE, "tile.store(out[0:8], tile.zeros([8.0], ts.f32))"),
    ("full_bad_dtype", CE, "tile.store(out[0:8], tile.full([8], 1.0, 'f32'))"),
    ("arange_empty", CE, "tile.store(out[0:8], tile.cast(tile.arange(8, 8), ts.f32))"),
    ("arange_runtime", CE, "tile.store(out[0:8], tile.cast(tile.arange(0, tile.program_id(0)), ts.f32))"),
    ("alloc_runtime_size", CE, "buf = tile.alloc_shared([tile.program_id(0)], ts.f32)"),
    ("alloc_zero_size", CE, "buf = tile.alloc_shared([0, 8], ts.f32)"),
    ("alloc_negative_size", CE, "buf = tile.alloc_shared([-4], ts.f32)"),
    ("alloc_bad_dtype", CE, "buf = tile.alloc_shared([8], np.float32)"),
    ("cp_async_dtype", CE, "buf = tile.alloc_shared([8], ts.f16)\ntile.cp_async(buf, x[0:8])"),
    ("cp_async_shape", CE, "buf = tile.alloc_shared([16], ts.f32)\ntile.cp_async(buf, x[0:8])"),
    ("cp_async_not_shared", CE, "tile.cp_async(out[0:8], x[0:8])"),
    ("cp_wait_runtime", CE, "tile.cp_wait_group(tile.program_id(0))"),
    ("fill_not_shared", CE, "tile.fill(out[0:8], 0.0)"),
    ("accumulate_not_shared", CE, "tile.accumulate(tile.zeros([8], ts.f32), 1.0)"),
    ("accumulate_shape", CE, "buf = tile.alloc_shared([8], ts.f32)\ntile.accumulate(buf, tile.load(x[0:16]))"),
    ("mma_inner_mismatch", CE, "a = tile.zeros([16, 16], ts.f16)\nb = tile.zeros([8, 16], ts.f16)\nc = tile.mma(a, b)"),
    ("mma_one_d", CE, "a = tile.zeros([16], ts.f16)\nc = tile.mma(a, a)"),
    ("mma_int", CE, "a = tile.zeros([16, 16], ts.i32)\nc = tile.mma(a, a)"),
    ("mma_acc_type", CE, "a = tile.zeros([16, 16], ts.f16)\nc = tile.mma(a, a, accumulator_type=ts.f16)"),
    ("transpose_1d", CE, "v = tile.load(x[0:8])\ntile.store(out[0:8], v.T)"),
    ("bitand_on_float", CE, "v = tile.load(x[0:8])\ntile.store(out[0:8], v & v)"),
    ("shift_float", CE, "v = tile.load(x[0:8])\ntile.store(out[0:8], v << 1)"),
    ("ts_function_in_kernel", CE, "tile.store(out[0:8], helper_fn(tile.load(x[0:8])))"),
    ("kernel_launch_in_kernel", CE, "k[(1,)](x, out)"),
    ("compile_time_recursion", CE, "tile.store(out[0:8], tile.zeros([8], ts.f32) + forever(3))"),
    ("store_shared_bad_dst", CE, "tile.store_shared(out[0:8], tile.load(x[0:8]))"),
    ("load_shared_bad_src", CE, "v = tile.load_shared(x[0:8])"),
    ("shared_sub_range", CE, "buf = tile.alloc_shared([8, 8], ts.f32)\nv = buf[0:4, 0]"),
    ("tile_index_float", CE, "v = tile.zeros([8, 8], ts.f32)\nw = v[:, 1.5]"),
    ("tile_index_out_of_range", CE, "v = tile.zeros([8, 8], ts.f32)\nw = v[:, 9]"),
    ("load_block_odd_args", CE, "v = tile.load_block(x, 0, 8, 8)"),
    ("load_block_no_block_size", CE, "v = tile.load_block(x)"),
    ("load_block_runtime_size", CE, "v = tile.load_block(x, 0, tile.program_id(0))"),
    ("store_block_too_big", CE, "tile.store_block(out, tile.zeros([8, 8], ts.f32), 0)"),
    ("apply_gating_bad_matrix", CE, "v = tile.apply_gating(tile.load(x[0:8]), tile.zeros([4, 4], ts.f32))"),
    ("attention_score_shapes", CE, "a = tile.zeros([8, 4], ts.f32)\nb = tile.zeros([4, 4], ts.f32)\ns = tile.compute_attention_score(a, b, tile.zeros([8, 4], ts.f32))"),
    ("huge_static_unroll", CE, "for i in tile.static_range(10 ** 9):\n    pass"),
    ("huge_tile", CE, "tile.store(out[0:8], tile.sum(tile.zeros([1 << 20, 1 << 20], ts.f32), axis=0))"),
    ("huge_constexpr_block", CE, "tile.store(out[0:BIG], tile.load(x[0:BIG]))"),
    ("i32_constant_overflow", CE, "tile.store(out[0:8], tile.cast(tile.full([8], 2 ** 40, ts.i32), ts.f32))"),
    ("i8_constant_overflow", CE, "tile.store(out[0:8], tile.cast(tile.full([8], 300, ts.i8), ts.f32))"),
    ("runtime_i32_plus_huge", CE, "n = tile.cast(tile.program_id(0), ts.i32) + 2 ** 40\ntile.store(out[0], tile.cast(n, ts.f32))"),
    ("int_literal_beyond_i64", CE, "n = tile.program_id(0) + 2 ** 70\ntile.store(out[0], tile.cast(n, ts.f32))"),
    ("mma_three_d", CE, "a = tile.zeros([2, 16, 16], ts.f16)\nc = tile.mma(a, a)"),
    ("sqrt_of_int_tile", CE, "v = tile.arange(0, 8)\ntile.store(out[0:8], tile.log(v) + tile.sqrt(v) + tile.load(x[0:8]) + v.missing)"),
    ("list_of_tensors_expected", CE, "v = tile.load(x[0:8])\nw = v[0][0]"),
    ("assign_to_view_shape", CE, "out[0:8] = tile.zeros([16], ts.f32)"),
    ("augassign_tensor", CE, "x += 1.0"),
    ("delete_stmt", CE, "v = tile.load(x[0:8])\ndel v"),
    ("async_def_like_await", CE, "v = await_me(x)"),
    ("fstring_runtime", CE, "s = f'{tile.program_id(0)}'\ntile.store(out[0], 1.0)"),
    ("ternary_shapes", CE, "v = tile.load(x[0:8]) if tile.program_id(0) > 0 else tile.load(x[0:4])\ntile.store(out[0:8], v)"),
    ("walrus", CE, "if (n := tile.program_id(0)) > 0:\n    tile.store(out[0], 1.0)"),
    ("match_stmt", CE, "match tile.program_id(0):\n    case 0:\n        pass"),
]

_EXTRA_PRELUDE = {
    "ts_function_in_kernel": "@ts.function\ndef helper_fn(a):\n    return a\n",
    "compile_time_recursion": "def forever(n):\n    return forever(n + 1)\n",
    "huge_constexpr_block": "BIG = 2 ** 40\n",
    "load_block_no_block_size": "",
}

CASES = []
for _name, _cls, _body in _KERNEL_BODIES:
    CASES.append((_name, _cls, _EXTRA_PRELUDE.get(_name, "") + _kernel(_body)))

# -- kernels over 2-d tensors, lists, annotations ---------------------------------------------------------
_K2 = 'x: tile.Tensor["M", "N", ts.f32], out: tile.Tensor["M", "N", ts.f32]'
CASES += [
    ("list_index_static_out_of_range", CE, _kernel("tile.store(out[0:8], tile.load(xs[3][0:8]))",
                                                  'xs: list[tile.Tensor], out: tile.Tensor["N", ts.f32]',
                                                  "k[(1,)]([Z(8), Z(8)], Z(8))")),
    ("list_shape_attribute", CE, _kernel("n = xs.shape[0]", 'xs: list[tile.Tensor], out: tile.Tensor["N", ts.f32]',
                                         "k[(1,)]([Z(8)], Z(8))")),
    ("list_slice", CE, _kernel("ys = xs[0:1]", 'xs: list[tile.Tensor], out: tile.Tensor["N", ts.f32]',
                               "k[(1,)]([Z(8)], Z(8))")),
    ("list_float_index", CE, _kernel("y = xs[1.0]", 'xs: list[tile.Tensor], out: tile.Tensor["N", ts.f32]',
                                     "k[(1,)]([Z(8), Z(8)], Z(8))")),
    ("list_as_value", CE, _kernel("tile.store(out[0:8], xs + 1.0)", 'xs: list[tile.Tensor], out: tile.Tensor["N", ts.f32]',
                                  "k[(1,)]([Z(8)], Z(8))")),
    ("list_empty", CE, _kernel("pass", 'xs: list[tile.Tensor], out: tile.Tensor["N", ts.f32]', "k[(1,)]([], Z(8))")),
    ("list_mixed_dtype", DT, _kernel("pass", 'xs: list[tile.Tensor], out: tile.Tensor["N", ts.f32]',
                                     "k[(1,)]([Z(8), Z(8, dtype=np.float64)], Z(8))")),
    ("list_mixed_rank", SH, _kernel("pass", 'xs: list[tile.Tensor], out: tile.Tensor["N", ts.f32]',
                                    "k[(1,)]([Z(8), Z(8, 1)], Z(8))")),
    ("list_mixed_shape", SH, _kernel("pass", 'xs: list[tile.Tensor], out: tile.Tensor["N", ts.f32]',
                                     "k[(1,)]([Z(8), Z(9)], Z(8))")),
    ("list_not_a_list", CE, _kernel("pass", 'xs: list[tile.Tensor], out: tile.Tensor["N", ts.f32]',
                                    "k[(1,)](Z(8), Z(8))")),
    ("list_of_numbers", CE, _kernel("pass", 'xs: list[tile.Tensor], out: tile.Tensor["N", ts.f32]',
                                    "k[(1,)]([1.0, 2.0], Z(8))")),
    ("list_annotated_dim_mismatch", SH, _kernel("pass", 'xs: list[tile.Tensor["N", ts.f32]], out: tile.Tensor["N", ts.f32]',
                                                "k[(1,)]([Z(8), Z(8)], Z(9))")),
    ("list_annotated_dtype", DT, _kernel("pass", 'xs: list[tile.Tensor["N", ts.f16]], out: tile.Tensor["N", ts.f32]',
                                         "k[(1,)]([Z(8)], Z(8))")),
    ("annotation_string_dtype", CE, _kernel("pass", 'x: tile.Tensor["N", "float32"]', "k[(1,)](Z(8))")),
    ("annotation_float_dim", CE, _kernel("pass", 'x: tile.Tensor[1.5, ts.f32]', "k[(1,)](Z(8))")),
    ("annotation_two_dtypes", CE, _kernel("pass", 'x: tile.Tensor["N", ts.f32, ts.f16]', "k[(1,)](Z(8))")),
    ("annotation_unknown_name", CE, _kernel("pass", 'x: "tile.Tensor[\'N\', ts.nonexistent]"', "k[(1,)](Z(8))")),
    ("annotation_bad_object", CE, _kernel("pass", 'x: 42', "k[(1,)](Z(8))")),
    ("varargs_kernel", CE, "@ts.kernel\ndef k(*xs):\n    pass\n\nk[(1,)](Z(8))\n"),
    ("kwargs_kernel", CE, "@ts.kernel\ndef k(**kw):\n    pass\n\nk[(1,)](Z(8))\n"),
    ("constexpr_missing", CE, _kernel("pass", 'x: tile.Tensor["N", ts.f32], BLOCK: ts.constexpr', "k[(1,)](Z(8))")),
    ("two_d_wrong_rank", SH, _kernel("pass", _K2, "k[(1,)](Z(8), Z(8, 8))")),
    ("two_d_dim_mismatch", SH, _kernel("pass", _K2, "k[(1,)](Z(8, 4), Z(8, 5))")),
    ("static_dim_mismatch", SH, _kernel("pass", 'x: tile.Tensor[16, ts.f32]', "k[(1,)](Z(8))")),
    ("named_dim_not_bound", CE, _kernel("buf = tile.alloc_shared([tile.context().Q], ts.f32)", 'x: tile.Tensor["N", ts.f32]',
                                        "k[(1,)](Z(8))")),
    ("context_unknown", CE, _kernel("n = tile.context().NOPE", 'x: tile.Tensor["N", ts.f32]', "k[(1,)](Z(8))")),
]

# -- launches -----------------------------------------------------------------------------------------
_OK = _kernel("i = tile.program_id(0) * 8\ntile.store(out[i:i + 8], tile.load(x[i:i + 8]))", launch="")
CASES += [(n, c, _OK + launch + "\n") for n, c, launch in [
    ("grid_float", LE, "k[(1.5,)](Z(64), Z(64))"),
    ("grid_negative", LE, "k[(-1,)](Z(64), Z(64))"),
    ("grid_four_dims", LE, "k[(1, 1, 1, 1)](Z(64), Z(64))"),
    ("grid_empty", LE, "k[()](Z(64), Z(64))"),
    ("grid_string", LE, "k['abc'](Z(64), Z(64))"),
    ("grid_bool", LE, "k[(True,)](Z(64), Z(64))"),
    ("grid_function_raises", LE, "k[lambda m: 1 // 0](Z(64), Z(64))"),
    ("grid_function_returns_str", LE, "k[lambda m: 'x'](Z(64), Z(64))"),
    ("grid_function_bad_key", LE, "k[lambda m: (m['NOPE'],)](Z(64), Z(64))"),
    ("too_many_args", CE, "k[(1,)](Z(64), Z(64), Z(64))"),
    ("missing_arg", CE, "k[(1,)](Z(64))"),
    ("unexpected_kwarg", CE, "k[(1,)](Z(64), Z(64), colour=3)"),
    ("multiple_values", CE, "k[(1,)](Z(64), Z(64), x=Z(64))"),
    ("dtype_mismatch", DT, "k[(1,)](Z(64, dtype=np.float64), Z(64))"),
    ("rank_mismatch", SH, "k[(1,)](Z(8, 8), Z(64))"),
    ("dim_mismatch", SH, "k[(1,)](Z(64), Z(65))"),
    ("complex_array", DT, "k[(1,)](Z(64, dtype=np.complex64), Z(64))"),
    ("object_array", DT, "k[(1,)](np.empty(64, object), Z(64))"),
    ("string_array", DT, "k[(1,)](np.array(['a'] * 64), Z(64))"),
    ("list_for_tensor", CE, "k[(1,)]([0.0] * 64, Z(64))"),
    ("scalar_for_tensor", CE, "k[(1,)](1.0, Z(64))"),
    ("none_for_tensor", CE, "k[(1,)](None, Z(64))"),
    ("read_only_output", LE, "o = Z(64)\no.flags.writeable = False\nk[(1,)](Z(64), o)"),
    ("num_warps_zero", CE, "k[(1,)](Z(64), Z(64), num_warps=0)"),
    ("num_warps_huge", CE, "k[(1,)](Z(64), Z(64), num_warps=64)"),
    ("num_warps_float", CE, "k[(1,)](Z(64), Z(64), num_warps=4.0)"),
    ("num_stages_zero", CE, "k[(1,)](Z(64), Z(64), num_stages=0)"),
    ("persistent_string", CE, "k[(1,)](Z(64), Z(64), persistent='yes')"),
    ("warp_specialize_int", CE, "k[(1,)](Z(64), Z(64), warp_specialize=2)"),
    ("num_ctas_huge", CE, "ts.compile(k, Z(64), Z(64), target='sm_90a', num_ctas=64)"),
    ("num_ctas_sm80", CE, "ts.compile(k, Z(64), Z(64), target='sm_80', num_ctas=2)"),
    ("call_without_grid", CE, "k(Z(64), Z(64))"),
    ("compile_unknown_target", "BackendUnavailable", "ts.compile(k, Z(64), Z(64), target='sm_99')"),
    ("compile_bad_example", DT, "ts.compile(k, Z(64, dtype=np.int32), Z(64))"),
    ("prepare_wrong_count", CE, "k.prepare(Z(64), grid=(1,))"),
    ("prepare_bad_grid", LE, "k.prepare(Z(64), Z(64), grid=(-2,))"),
    ("prepared_read_only", LE, "o = Z(64)\no.flags.writeable = False\nk.prepare(Z(64), o, grid=(1,))"),
    ("compiled_other_shape_dtype", DT, "ck = ts.compile(k, Z(64), Z(64))\nck[(1,)](Z(64, dtype=np.float16), Z(64))"),
    ("compiled_grid_bad", LE, "ck = ts.compile(k, Z(64), Z(64))\nck[(0.5,)](Z(64), Z(64))"),
    ("compiled_prepare_missing", CE, "ck = ts.compile(k, Z(64), Z(64))\nck.prepare(Z(64), grid=(1,))"),
    ("strides_not_elements", LE, "a = np.lib.stride_tricks.as_strided(Z(200), (64,), (6,))\nk[(1,)](a, Z(64))"),
    ("backend_knob_bogus", CE, "import os\nos.environ['TESSERA_BACKEND'] = 'tpu'\nk[(1,)](Z(64), Z(64))"),
    ("emu_arch_bogus", CE, "import os\nos.environ['TESSERA_BACKEND'] = 'emu'\nos.environ['TESSERA_EMU_ARCH'] = 'sm_70'\nk[(1,)](Z(64), Z(64))"),
]]

_SCALAR = _kernel("tile.store(out[0], tile.cast(n, ts.f32))", 'n: int, out: tile.Tensor["N", ts.f32]', "")
_SCALAR32 = _kernel("tile.store(out[0], tile.cast(n, ts.f32))", 'n: ts.i32, out: tile.Tensor["N", ts.f32]', "")
_SCALARF = _kernel("tile.store(out[0], v)", 'v: float, out: tile.Tensor["N", ts.f32]', "")
_SCALARB = _kernel("tile.store(out[0], tile.where(flag, 1.0, 0.0))", 'flag: bool, out: tile.Tensor["N", ts.f32]', "")
CASES += [
    ("int_param_gets_float", DT, _SCALAR + "k[(1,)](1.5, Z(8))\n"),
    ("int_param_gets_string", DT, _SCALAR + "k[(1,)]('3', Z(8))\n"),
    ("int_param_gets_bool", DT, _SCALAR + "k[(1,)](True, Z(8))\n"),
    ("int_param_beyond_i64", LE, _SCALAR + "k[(1,)](2 ** 70, Z(8))\n"),
    ("i32_param_overflow", LE, _SCALAR32 + "k[(1,)](2 ** 40, Z(8))\n"),
    ("int_param_2_63", LE, _SCALAR + "k[(1,)](2 ** 63, Z(8))\n"),
    ("grid_beyond_int64", LE, _SCALAR + "k[(2 ** 63,)](1, Z(8))\n"),
    ("int_floordiv_constant_zero", CE, _kernel("n = tile.cast(tile.program_id(0), ts.i32)\ntile.store(out[0], tile.cast(n // 0, ts.f32))")),
    ("int_mod_constant_zero", CE, _kernel("n = tile.cast(tile.program_id(0), ts.i32)\ntile.store(out[0], tile.cast(n % 0, ts.f32))")),
    ("int_runtime_division_by_zero", LE, _kernel("n = tile.program_id(0)\ntile.store(out[0], tile.cast(7 // n, ts.f32))")),
    ("int_runtime_min_div_minus_one", LE, _SCALAR.replace("tile.cast(n, ts.f32)", "tile.cast(n // (n - n - 1), ts.f32)")
     + "k[(1,)](-2 ** 63, Z(8))\n"),
    ("float_param_gets_string", DT, _SCALARF + "k[(1,)]('x', Z(8))\n"),
    ("float_param_gets_array", DT, _SCALARF + "k[(1,)](Z(3), Z(8))\n"),
    ("bool_param_gets_string", DT, _SCALARB + "k[(1,)]('yes', Z(8))\n"),
]

# -- autotune -------------------------------------------------------------------------------------------
_TUNED_BODY = "    i = tile.program_id(0) * BLOCK\n    tile.store(out[i:i + BLOCK], tile.load(x[i:i + BLOCK]))\n"
_SIG = 'def k(x: tile.Tensor["N", ts.f32], out: tile.Tensor["N", ts.f32], BLOCK: ts.constexpr = 8):\n'
CASES += [
    ("autotune_empty_space", CE, "@ts.kernel.autotune(space=dict())\n" + _SIG + _TUNED_BODY),
    ("autotune_empty_values", CE, "@ts.kernel.autotune(space=dict(BLOCK=[]))\n" + _SIG + _TUNED_BODY),
    ("autotune_unknown_key", CE, "@ts.kernel.autotune(space=dict(BLOCK=[8, 16]), key=['Q'])\n" + _SIG + _TUNED_BODY),
    ("autotune_key_is_tuned", CE, "@ts.kernel.autotune(space=dict(BLOCK=[8, 16]), key=['BLOCK'])\n" + _SIG + _TUNED_BODY),
    ("autotune_tensor_in_space", CE, "@ts.kernel.autotune(space=dict(x=[1, 2]))\n" + _SIG + _TUNED_BODY),
    ("autotune_bad_configs", CE, "@ts.kernel.autotune(configs=[{'BLOCK': 8}, {'num_warps': 4}])\n" + _SIG + _TUNED_BODY),
    ("autotune_all_configs_fail", CE, "@ts.kernel.autotune(space=dict(BLOCK=[-8]))\n" + _SIG + _TUNED_BODY
     + "k[(1,)](Z(64), Z(64))\n"),
]

# -- resources ------------------------------------------------------------------------------------------
CASES += [
    ("cpu_shared_too_big", OR, _kernel("buf = tile.alloc_shared([1 << 19], ts.f32)\ntile.fill(buf, 0.0)")),
    ("sm80_shared_too_big", OR, _kernel("buf = tile.alloc_shared([1 << 16], ts.f32)\ntile.fill(buf, 0.0)", launch="")
     + "ts.compile(k, Z(64), Z(64), target='sm_80')\n"),
    ("sm90_shared_too_big", OR, _kernel("buf = tile.alloc_shared([1 << 16], ts.f32)\ntile.fill(buf, 0.0)", launch="")
     + "ts.compile(k, Z(64), Z(64), target='sm_90a')\n"),
]

# -- graph functions --------------------------------------------------------------------------------------
def _fn(body, params="a, b", call="f(Z(2, 3), Z(4))"):
    lines = "\n".join("    " + ln for ln in body.strip("\n").splitlines())
    return f"@ts.function\ndef f({params}):\n{lines}\n\n{call}\n"


CASES += [
    ("fn_add_shapes", CE, _fn("return ts.add(a, b)")),
    ("fn_operator_shapes", CE, _fn("return a * b")),
    ("fn_gemm_inner", CE, _fn("return ts.gemm(a, b)", call="f(Z(2, 3), Z(4, 5))")),
    ("fn_gemm_vector", CE, _fn("return ts.gemm(a, b)", call="f(Z(3), Z(3, 5))")),
    ("fn_reshape_size", CE, _fn("return ts.reshape(a, (5, 5))", "a", "f(Z(2, 3))")),
    ("fn_transpose_axis", CE, _fn("return ts.transpose(a, 0, 5)", "a", "f(Z(2, 3))")),
    ("fn_sum_axis", CE, _fn("return ts.sum(a, axis=4)", "a", "f(Z(2, 3))")),
    ("fn_softmax_axis", CE, _fn("return ts.softmax(a, axis=-3)", "a", "f(Z(2, 3))")),
    ("fn_l2_norm_axis", CE, _fn("return ts.ops.l2_norm(a, axis=2)", "a", "f(Z(2, 3))")),
    ("fn_concat_shapes", CE, _fn("return ts.concatenate([a, b], axis=0)", call="f(Z(2, 3), Z(2, 4))")),
    ("fn_stack_empty", CE, _fn("return ts.stack([], axis=0)", "a", "f(Z(2, 3))")),
    ("fn_stack_shapes", CE, _fn("return ts.stack([a, b])", call="f(Z(2, 3), Z(3, 2))")),
    ("fn_slice_step", CE, _fn("return a[::2]", "a", "f(Z(4, 3))")),
    ("fn_index_out_of_range", CE, _fn("return a[5]", "a", "f(Z(4, 3))")),
    ("fn_index_float", CE, _fn("return a[1.5]", "a", "f(Z(4, 3))")),
    ("fn_at_runtime_index", CE, _fn("return a.at[a].set(1.0)", "a", "f(Z(4, 3))")),
    ("fn_cross_entropy_shapes", CE, _fn("return ts.ops.cross_entropy_loss(a, b)", call="f(Z(2, 3), Z(2, 4))")),
    ("fn_zeros_negative", CE, _fn("return ts.zeros((-2, 3)) + a", "a", "f(Z(2, 3))")),
    ("fn_arange_empty", CE, _fn("return ts.arange(0) + a", "a", "f(Z(2, 3))")),
    ("fn_diag_3d", CE, _fn("return ts.diag(a)", "a", "f(Z(2, 3, 4))")),
    ("fn_unknown_op", CE, _fn("return ts.ops.transformer_layer(a)", "a", "f(Z(2, 3))")),
    ("fn_unknown_ts_name", CE, _fn("return ts.frobnicate(a)", "a", "f(Z(2, 3))")),
    ("fn_bool_of_multi", CE, _fn("if a > 0.0:\n    return a\nreturn b", call="f(Z(2, 3), Z(2, 3))")),
    ("fn_float_of_multi", CE, _fn("return float(ts.sum(a, axis=1)) + b", call="f(Z(2, 3), Z(2, 3))")),
    ("fn_unknown_option", CE, "@ts.function(colour='red')\ndef f(a):\n    return a\n\nf(Z(2))\n"),
    ("fn_input_shapes_rank", SH, "@ts.function(input_shapes={'a': ('N', 'M')})\ndef f(a):\n    return a\n\nf(Z(2))\n"),
    ("fn_input_shapes_size", SH, "@ts.function(input_shapes={'a': (3,)})\ndef f(a):\n    return a\n\nf(Z(2))\n"),
    ("fn_input_shapes_unknown_arg", CE, "@ts.function(input_shapes={'q': (3,)})\ndef f(a):\n    return a\n\nf(Z(2))\n"),
    ("fn_compilation_config_bad", CE, "@ts.function(compilation_config='fast')\ndef f(a):\n    return a\n\nf(Z(2))\n"),
    ("fn_too_many_args", CE, _fn("return a", "a", "f(Z(2), Z(2))")),
    ("fn_missing_arg", CE, _fn("return a + b", "a, b", "f(Z(2))")),
    ("fn_unsupported_dtype", DT, _fn("return a + 1.0", "a", "f(Z(2, dtype=np.complex64))")),
    ("fn_dropout_p", CE, _fn("return ts.ops.dropout(a, p=1.5)", "a", "f(Z(2, 3))")),
    ("fn_training_progress_range", CE, "with ts.training(progress=2.0):\n    pass\n"),
    ("fn_scale_outside", CE, "ts.ops.learnable_scale_parameter()\n"),
    ("fn_parameter_shape", CE, _fn("return a * ts.ops.learnable_scale_parameter()", "a", "f(Z(2))")
     + "f.parameters['scale0'] = np.zeros(3)\n"),
    ("fn_parameter_unknown", CE, _fn("return a * ts.ops.learnable_scale_parameter()", "a", "f(Z(2))")
     + "f.parameters['nope'] = 1.0\n"),
    ("fn_recursion", CE, _fn("return f(a)", "a", "f(Z(2))")),
    ("fn_prefetch_device", CE, _fn("ts.memory.prefetch(a, device='tpu')\nreturn a", "a", "f(Z(2))")),
    ("fn_svd_3d", CE, _fn("u, s, v = ts.ops.svd(a)\nreturn u", "a", "f(Z(2, 3, 4))")),
    ("fn_compile_graph_break", CE, _fn("if ts.sum(a, axis=0)[0] > 0.0:\n    return a\nreturn a", "a", "")
     + "ts.compile(f, Z(2, 3))\n"),
    ("fn_eager_compare_multi", CE, _fn("if ts.ops.l2_norm(a) > 0.0 and a > 1.0:\n    return a\nreturn a", "a",
                                       "f(np.ones((2, 3), np.float32))")),
]
