"""The `tile` dialect, defined in IRDL (DESIGN §6).

Tiles are builtin ranked tensors, global tensors are strided memrefs, shared buffers are memrefs in
the GPU workgroup address space; elementwise math is upstream arith/math and control flow is scf.
What remains tile-specific lives here. IRDL checks operand/result kinds; the finer rules (shapes
of mma, reduce axes, view sizes) are checked by `tessera.ir.verify`.

(IRDL in LLVM 22.1 aborts on `any_of` over a dialect type and a builtin type, so load/store
sources are `irdl.any` here and `tessera.ir.verify` checks them.)

Op summary (generic syntax only: IRDL ops have no custom assembly):
  tile.program_id {axis}                         -> index
  tile.num_programs {axis}                       -> index
  tile.view(base, offsets...) {sizes, squeeze}   -> !tile.window<shape, elem> (bounds-checked)
  tile.load(src, [mask], [other])                -> tensor | scalar           src: view or shared memref
  tile.store(dst, value, [mask])                                              dst: view or shared memref
  tile.alloc_shared {swizzle}                    -> memref<..., workgroup>
  tile.cp_async(dst_shared, src_view) {bypass_l1}
  tile.cp_commit_group, tile.cp_wait_group {pending}, tile.barrier
  tile.mma(a, b, [acc])                          -> tensor<MxNxf32>
  tile.reduce(x) {kind, axis}                    -> tensor | scalar
  tile.broadcast(x)                              -> tensor
  tile.convert_layout(x) {layout}                -> tensor (same type; NVIDIA: leave the mma layout)
  tile.arange {start, end}                       -> tensor<Nxi32>
  tile.list_get(table, i)                        -> memref (element i of a list of global tensors)
"""

TILE_IRDL = r"""
irdl.dialect @tile {
  irdl.type @window {
    %shape = irdl.base "#builtin.dense_array"
    %elem = irdl.any
    irdl.parameters(shape: %shape, elem: %elem)
  }
  irdl.operation @program_id {
    %axis = irdl.base "#builtin.integer"
    %idx = irdl.is index
    irdl.attributes {"axis" = %axis}
    irdl.results(id: %idx)
  }
  irdl.operation @num_programs {
    %axis = irdl.base "#builtin.integer"
    %idx = irdl.is index
    irdl.attributes {"axis" = %axis}
    irdl.results(n: %idx)
  }
  irdl.operation @view {
    %base = irdl.base "!builtin.memref"
    %idx = irdl.is index
    %sizes = irdl.base "#builtin.dense_array"
    %squeeze = irdl.base "#builtin.dense_array"
    %v = irdl.base @tile::@window
    irdl.operands(base: %base, offsets: variadic %idx)
    irdl.attributes {"sizes" = %sizes, "squeeze" = %squeeze}
    irdl.results(view: %v)
  }
  irdl.operation @load {
    %src = irdl.any
    %mask = irdl.any
    %other = irdl.any
    %res = irdl.any
    irdl.operands(src: %src, mask: optional %mask, other: optional %other)
    irdl.results(value: %res)
  }
  irdl.operation @store {
    %dst = irdl.any
    %val = irdl.any
    %mask = irdl.any
    irdl.operands(dst: %dst, value: %val, mask: optional %mask)
  }
  irdl.operation @alloc_shared {
    %swz = irdl.base "#builtin.string"
    %buf = irdl.base "!builtin.memref"
    irdl.attributes {"swizzle" = %swz}
    irdl.results(buffer: %buf)
  }
  irdl.operation @cp_async {
    %dst = irdl.base "!builtin.memref"
    %src = irdl.base @tile::@window
    %bypass = irdl.base "#builtin.integer"
    irdl.operands(dst: %dst, src: %src)
    irdl.attributes {"bypass_l1" = %bypass}
  }
  irdl.operation @cp_commit_group {
  }
  irdl.operation @cp_wait_group {
    %n = irdl.base "#builtin.integer"
    irdl.attributes {"pending" = %n}
  }
  irdl.operation @barrier {
  }
  irdl.operation @mma {
    %a = irdl.base "!builtin.tensor"
    %b = irdl.base "!builtin.tensor"
    %acc = irdl.base "!builtin.tensor"
    %res = irdl.base "!builtin.tensor"
    irdl.operands(a: %a, b: %b, acc: optional %acc)
    irdl.results(d: %res)
  }
  irdl.operation @reduce {
    %x = irdl.base "!builtin.tensor"
    %sum = irdl.is "sum"
    %max = irdl.is "max"
    %min = irdl.is "min"
    %kind = irdl.any_of(%sum, %max, %min)
    %axis = irdl.base "#builtin.integer"
    %res = irdl.any
    irdl.operands(x: %x)
    irdl.attributes {"kind" = %kind, "axis" = %axis}
    irdl.results(r: %res)
  }
  irdl.operation @broadcast {
    %x = irdl.any
    %res = irdl.base "!builtin.tensor"
    irdl.operands(x: %x)
    irdl.results(r: %res)
  }
  irdl.operation @convert_layout {
    %x = irdl.base "!builtin.tensor"
    %layout = irdl.base "#builtin.string"
    %res = irdl.base "!builtin.tensor"
    irdl.operands(x: %x)
    irdl.attributes {"layout" = %layout}
    irdl.results(r: %res)
  }
  irdl.operation @arange {
    %start = irdl.base "#builtin.integer"
    %end = irdl.base "#builtin.integer"
    %res = irdl.base "!builtin.tensor"
    irdl.attributes {"start" = %start, "end" = %end}
    irdl.results(r: %res)
  }
  irdl.operation @list_get {
    %table = irdl.base "!builtin.memref"
    %idx = irdl.is index
    %res = irdl.base "!builtin.memref"
    irdl.operands(table: %table, index: %idx)
    irdl.results(tensor: %res)
  }
}
"""

# ops in the order of the docstring; the lit suite has one round-trip test per entry.
TILE_OPS = ["program_id", "num_programs", "view", "load", "store", "alloc_shared", "cp_async",
            "cp_commit_group", "cp_wait_group", "barrier", "mma", "reduce", "broadcast", "convert_layout", "arange",
            "list_get"]
