"""The `ts` dialect (graph level), defined in IRDL (DESIGN §6).

Values are builtin ranked tensors; plain elementwise math is upstream arith/math on tensors, and
indexing a tensor with ints is `tensor.extract`. The domain ops of the GDN live here:

  ts.gating_function(delta, W) {distance}          sigmoid(exp(-0.1·d) · (delta @ W))
  ts.delta_connection(source, target, W) {distance} (t - s) · gating_function(t - s, W, d)
  ts.fused_delta_gating(target, sources..., Ws..., coefficients..., [residual])
                       {distances, sparse}          Σ_i c_i · delta_connection(s_i, t, W_i, d_i) (+ t)
  ts.fused_delta_gating_grad(target, sources..., Ws..., coefficients..., dy) {distances, sparse}
                       -> (d target, d sources..., d Ws..., d coefficients [n])
                                                    its backward pass without the residual (one kernel)
  ts.gemm(a, b)                                     batched over leading dims, f32 accumulation (f64 for f64)
  ts.gemm_epilogue(a, b, [scale], [multiplier]) {activation}
                                                    multiplier · act(scale · (a @ b)) in one GEMM
  ts.sigmoid(x)                                     1 / (1 + exp(-x)), computed stably
  ts.embedding(ids, table)                          rows of table gathered by integer ids
  ts.dropout(x) {p, seed}                           x · keep / (1 − p), keep from a counter-based hash
  ts.softmax(x) {axis}      ts.l2_norm(x) {axis, keepdims}
  ts.reduce(x) {kind, axes, keepdims}               kind: sum | mean | max | min
  ts.cast(x)   ts.broadcast(x)   ts.transpose(x) {perm}   ts.reshape(x)   ts.concatenate(a, b) {axis}
  ts.slice(x) {offsets, sizes, squeeze}             x[..., a:b, i] (unit steps; squeezed dims dropped)

Collectives over a mesh axis (tessera.dist; `size` is the axis's number of ranks when traced, so the
result type is known; every rank runs the same graph, so the collectives match up):
  ts.all_reduce(x) {op, axis, size}                 op: sum | mean | max | min, over the axis's ranks
  ts.all_gather(x) {axis, dim, size}                the ranks' x concatenated along dim (dim × size)
  ts.reduce_scatter(x) {op, axis, dim, size}        part `axis rank` of the sum along dim (dim ÷ size)
  ts.dist_broadcast(x) {axis, src, size}            axis rank src's x on every rank (named apart from
                                                    ts.broadcast, the shape broadcast)
"""

# (A variadic operand's constraint unifies the types of all its elements in IRDL, so ops joining
# tensors of different shapes take two operands; ts.concatenate of n tensors is a chain.)
TS_IRDL = r"""
irdl.dialect @ts {
  irdl.operation @gating_function {
    %t = irdl.base "!builtin.tensor"
    %w = irdl.base "!builtin.tensor"
    %r = irdl.base "!builtin.tensor"
    %d = irdl.base "#builtin.float"
    irdl.operands(delta: %t, weights: %w)
    irdl.attributes {"distance" = %d}
    irdl.results(gate: %r)
  }
  irdl.operation @delta_connection {
    %s = irdl.base "!builtin.tensor"
    %t = irdl.base "!builtin.tensor"
    %w = irdl.base "!builtin.tensor"
    %r = irdl.base "!builtin.tensor"
    %d = irdl.base "#builtin.float"
    irdl.operands(source: %s, target: %t, weights: %w)
    irdl.attributes {"distance" = %d}
    irdl.results(delta: %r)
  }
  irdl.operation @fused_delta_gating {
    %t = irdl.base "!builtin.tensor"
    %s = irdl.base "!builtin.tensor"
    %w = irdl.base "!builtin.tensor"
    %c = irdl.any
    %res = irdl.base "!builtin.tensor"
    %r = irdl.base "!builtin.tensor"
    %d = irdl.base "#builtin.dense_array"
    %sp = irdl.base "#builtin.integer"
    irdl.operands(target: %t, sources: variadic %s, weights: variadic %w, coefficients: variadic %c, residual: optional %res)
    irdl.attributes {"distances" = %d, "sparse" = %sp}
    irdl.results(out: %r)
  }
  irdl.operation @fused_delta_gating_grad {
    %t = irdl.base "!builtin.tensor"
    %s = irdl.base "!builtin.tensor"
    %w = irdl.base "!builtin.tensor"
    %c = irdl.any
    %dy = irdl.base "!builtin.tensor"
    %rt = irdl.base "!builtin.tensor"
    %rs = irdl.base "!builtin.tensor"
    %rw = irdl.base "!builtin.tensor"
    %rc = irdl.base "!builtin.tensor"
    %d = irdl.base "#builtin.dense_array"
    %sp = irdl.base "#builtin.integer"
    irdl.operands(target: %t, sources: variadic %s, weights: variadic %w, coefficients: variadic %c, dy: %dy)
    irdl.attributes {"distances" = %d, "sparse" = %sp}
    irdl.results(d_target: %rt, d_sources: variadic %rs, d_weights: variadic %rw, d_coefficients: %rc)
  }
  irdl.operation @all_reduce {
    %x = irdl.base "!builtin.tensor"
    %r = irdl.base "!builtin.tensor"
    %sum = irdl.is "sum"
    %mean = irdl.is "mean"
    %max = irdl.is "max"
    %min = irdl.is "min"
    %op = irdl.any_of(%sum, %mean, %max, %min)
    %axis = irdl.base "#builtin.string"
    %n = irdl.base "#builtin.integer"
    irdl.operands(x: %x)
    irdl.attributes {"op" = %op, "axis" = %axis, "size" = %n}
    irdl.results(y: %r)
  }
  irdl.operation @all_gather {
    %x = irdl.base "!builtin.tensor"
    %r = irdl.base "!builtin.tensor"
    %axis = irdl.base "#builtin.string"
    %d = irdl.base "#builtin.integer"
    %n = irdl.base "#builtin.integer"
    irdl.operands(x: %x)
    irdl.attributes {"axis" = %axis, "dim" = %d, "size" = %n}
    irdl.results(y: %r)
  }
  irdl.operation @reduce_scatter {
    %x = irdl.base "!builtin.tensor"
    %r = irdl.base "!builtin.tensor"
    %sum = irdl.is "sum"
    %mean = irdl.is "mean"
    %max = irdl.is "max"
    %min = irdl.is "min"
    %op = irdl.any_of(%sum, %mean, %max, %min)
    %axis = irdl.base "#builtin.string"
    %d = irdl.base "#builtin.integer"
    %n = irdl.base "#builtin.integer"
    irdl.operands(x: %x)
    irdl.attributes {"op" = %op, "axis" = %axis, "dim" = %d, "size" = %n}
    irdl.results(y: %r)
  }
  irdl.operation @dist_broadcast {
    %x = irdl.base "!builtin.tensor"
    %r = irdl.base "!builtin.tensor"
    %axis = irdl.base "#builtin.string"
    %src = irdl.base "#builtin.integer"
    %n = irdl.base "#builtin.integer"
    irdl.operands(x: %x)
    irdl.attributes {"axis" = %axis, "src" = %src, "size" = %n}
    irdl.results(y: %r)
  }
  irdl.operation @gemm {
    %a = irdl.base "!builtin.tensor"
    %b = irdl.base "!builtin.tensor"
    %r = irdl.base "!builtin.tensor"
    irdl.operands(a: %a, b: %b)
    irdl.results(c: %r)
  }
  irdl.operation @gemm_epilogue {
    %a = irdl.base "!builtin.tensor"
    %b = irdl.base "!builtin.tensor"
    %s = irdl.any
    %m = irdl.base "!builtin.tensor"
    %r = irdl.base "!builtin.tensor"
    %none = irdl.is "none"
    %sig = irdl.is "sigmoid"
    %act = irdl.any_of(%none, %sig)
    irdl.operands(a: %a, b: %b, scale: optional %s, multiplier: optional %m)
    irdl.attributes {"activation" = %act}
    irdl.results(c: %r)
  }
  irdl.operation @embedding {
    %i = irdl.base "!builtin.tensor"
    %t = irdl.base "!builtin.tensor"
    %r = irdl.base "!builtin.tensor"
    irdl.operands(ids: %i, table: %t)
    irdl.results(y: %r)
  }
  irdl.operation @dropout {
    %x = irdl.base "!builtin.tensor"
    %r = irdl.base "!builtin.tensor"
    %p = irdl.base "#builtin.float"
    %seed = irdl.base "#builtin.integer"
    irdl.operands(x: %x)
    irdl.attributes {"p" = %p, "seed" = %seed}
    irdl.results(y: %r)
  }
  irdl.operation @sigmoid {
    %x = irdl.base "!builtin.tensor"
    %r = irdl.base "!builtin.tensor"
    irdl.operands(x: %x)
    irdl.results(y: %r)
  }
  irdl.operation @softmax {
    %x = irdl.base "!builtin.tensor"
    %r = irdl.base "!builtin.tensor"
    %ax = irdl.base "#builtin.integer"
    irdl.operands(x: %x)
    irdl.attributes {"axis" = %ax}
    irdl.results(y: %r)
  }
  irdl.operation @l2_norm {
    %x = irdl.base "!builtin.tensor"
    %r = irdl.base "!builtin.tensor"
    %ax = irdl.base "#builtin.integer"
    %kd = irdl.base "#builtin.integer"
    irdl.operands(x: %x)
    irdl.attributes {"axis" = %ax, "keepdims" = %kd}
    irdl.results(y: %r)
  }
  irdl.operation @reduce {
    %x = irdl.base "!builtin.tensor"
    %r = irdl.any
    %sum = irdl.is "sum"
    %mean = irdl.is "mean"
    %max = irdl.is "max"
    %min = irdl.is "min"
    %kind = irdl.any_of(%sum, %mean, %max, %min)
    %axes = irdl.base "#builtin.dense_array"
    %kd = irdl.base "#builtin.integer"
    irdl.operands(x: %x)
    irdl.attributes {"kind" = %kind, "axes" = %axes, "keepdims" = %kd}
    irdl.results(y: %r)
  }
  irdl.operation @cast {
    %x = irdl.any
    %r = irdl.any
    irdl.operands(x: %x)
    irdl.results(y: %r)
  }
  irdl.operation @broadcast {
    %x = irdl.any
    %r = irdl.base "!builtin.tensor"
    irdl.operands(x: %x)
    irdl.results(y: %r)
  }
  irdl.operation @transpose {
    %x = irdl.base "!builtin.tensor"
    %r = irdl.base "!builtin.tensor"
    %p = irdl.base "#builtin.dense_array"
    irdl.operands(x: %x)
    irdl.attributes {"perm" = %p}
    irdl.results(y: %r)
  }
  irdl.operation @slice {
    %x = irdl.base "!builtin.tensor"
    %r = irdl.base "!builtin.tensor"
    %o = irdl.base "#builtin.dense_array"
    %z = irdl.base "#builtin.dense_array"
    %q = irdl.base "#builtin.dense_array"
    irdl.operands(x: %x)
    irdl.attributes {"offsets" = %o, "sizes" = %z, "squeeze" = %q}
    irdl.results(y: %r)
  }
  irdl.operation @reshape {
    %x = irdl.base "!builtin.tensor"
    %r = irdl.base "!builtin.tensor"
    irdl.operands(x: %x)
    irdl.results(y: %r)
  }
  irdl.operation @concatenate {
    %x = irdl.base "!builtin.tensor"
    %y = irdl.base "!builtin.tensor"
    %r = irdl.base "!builtin.tensor"
    %ax = irdl.base "#builtin.integer"
    irdl.operands(lhs: %x, rhs: %y)
    irdl.attributes {"axis" = %ax}
    irdl.results(y: %r)
  }
}
"""

TS_OPS = ["gating_function", "delta_connection", "fused_delta_gating", "fused_delta_gating_grad", "gemm", "gemm_epilogue", "sigmoid", "embedding", "dropout", "softmax",
          "l2_norm", "reduce", "cast", "broadcast", "transpose", "reshape", "slice", "concatenate",
          "all_reduce", "all_gather", "reduce_scatter", "dist_broadcast"]
