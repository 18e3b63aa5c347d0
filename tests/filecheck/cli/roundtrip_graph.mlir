// RUN: grimc-opt %s | grimc-opt | filecheck %s
// RUN: grimc-opt %s --print-op-generic | grimc-opt | filecheck %s
// RUN: xdsl-opt %s | filecheck %s

// Every graph op round-trips through its custom syntax and the generic form.

builtin.module {
  func.func @main(%x: tensor<1x4x8x8xf32>, %s: tensor<4x1x1xf32>, %seq: tensor<5x1x3xf32>, %m: tensor<2x3x4xf32>, %n: tensor<4x5xf32>) -> tensor<1x4x8x8xf32> {
    %w = graph.weight "conv_w" : tensor<4x4x3x3xf32>
    %b = graph.weight "conv_b" : tensor<4xf32>
    %c = graph.conv %x, %w bias(%b : tensor<4xf32>) residual(%x : tensor<1x4x8x8xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64, act = #graph.act<relu>} : tensor<1x4x8x8xf32>, tensor<4x4x3x3xf32> -> tensor<1x4x8x8xf32>
    %dw = graph.weight "dw_w" : tensor<4x1x3x3xf32>
    %d = graph.conv %c, %dw {strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 4 : i64, act = #graph.act<clip, 0.0, 6.0>} : tensor<1x4x8x8xf32>, tensor<4x1x3x3xf32> -> tensor<1x4x4x4xf32>
    %a = graph.add %c, %s : tensor<1x4x8x8xf32>, tensor<4x1x1xf32> -> tensor<1x4x8x8xf32>
    %mu = graph.mul %a, %s {act = #graph.act<leaky_relu, 0.1>} : tensor<1x4x8x8xf32>, tensor<4x1x1xf32> -> tensor<1x4x8x8xf32>
    %su = graph.sum %a, %mu, %c : tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>
    %r = graph.relu %su : tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>
    %sg = graph.sigmoid %r : tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>
    %th = graph.tanh %sg : tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>
    %hs = graph.hard_swish %th : tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>
    %cl = graph.clip %hs {min = 0.0 : f32, max = 6.0 : f32} : tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>
    %lr = graph.leaky_relu %cl {alpha = 0.01 : f32} : tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>
    %hsg = graph.hard_sigmoid %lr {alpha = 0.2 : f32, beta = 0.5 : f32} : tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>
    %si = graph.silu %hsg : tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>
    %ex = graph.exp %si : tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>
    %lg = graph.log %ex : tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>
    %sq = graph.sqrt %lg : tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>
    %ng = graph.neg %sq : tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>
    %ab = graph.abs %ng : tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>
    %rc = graph.reciprocal %ab : tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>
    %ef = graph.erf %rc : tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>
    %ge2 = graph.gelu %ef {approximate = "tanh"} : tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>
    %sb = graph.sub %ge2, %s : tensor<1x4x8x8xf32>, tensor<4x1x1xf32> -> tensor<1x4x8x8xf32>
    %dv = graph.div %sb, %s {act = #graph.act<gelu>} : tensor<1x4x8x8xf32>, tensor<4x1x1xf32> -> tensor<1x4x8x8xf32>
    %pw = graph.pow %dv, %s : tensor<1x4x8x8xf32>, tensor<4x1x1xf32> -> tensor<1x4x8x8xf32>
    %mx = graph.max %pw, %s, %x : tensor<1x4x8x8xf32>, tensor<4x1x1xf32>, tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>
    %mn = graph.min %mx, %s : tensor<1x4x8x8xf32>, tensor<4x1x1xf32> -> tensor<1x4x8x8xf32>
    %eq = graph.equal %mn, %s : tensor<1x4x8x8xf32>, tensor<4x1x1xf32> -> tensor<1x4x8x8xf32>
    %ls = graph.less %mn, %x : tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>
    %le = graph.less_or_equal %mn, %x : tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>
    %an = graph.and %eq, %ls : tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>
    %or = graph.or %an, %le : tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>
    %nt = graph.not %or : tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>
    %wh = graph.where %nt, %mn, %s : tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>, tensor<4x1x1xf32> -> tensor<1x4x8x8xf32>
    %sl = graph.slice %wh {starts = array<i64: 0, 3, 7, 0>, steps = array<i64: 1, -1, -2, 3>} : tensor<1x4x8x8xf32> -> tensor<1x4x4x3xf32>
    %pd = graph.pad %sl {pads = array<i64: 0, 0, 1, 2, 0, 0, 2, 1>, mode = "reflect", value = 0.0 : f32} : tensor<1x4x4x3xf32> -> tensor<1x4x7x6xf32>
    %xp = graph.expand %s : tensor<4x1x1xf32> -> tensor<2x4x3x1xf32>
    %rz = graph.resize %pd {mode = "linear", coordinate_mode = "half_pixel", nearest_mode = "floor", scales = [1.0 : f32, 1.0 : f32, 2.0 : f32, 1.5 : f32]} : tensor<1x4x7x6xf32> -> tensor<1x4x14x9xf32>
    %rd = graph.reduce %rz {kind = "mean", axes = array<i64: 2, 3>, keepdims = 0 : i64} : tensor<1x4x14x9xf32> -> tensor<1x4xf32>
    %lnw = graph.weight "ln_g" : tensor<8x8xf32>
    %ln, %lnm, %lni = graph.layer_norm %x, %lnw bias(%lnw : tensor<8x8xf32>) {axis = 2 : i64, epsilon = 1.0e-05 : f32} : tensor<1x4x8x8xf32>, tensor<8x8xf32> -> tensor<1x4x8x8xf32>, tensor<1x4x1x1xf32>, tensor<1x4x1x1xf32>
    %pr = graph.prelu %hsg, %s : tensor<1x4x8x8xf32>, tensor<4x1x1xf32> -> tensor<1x4x8x8xf32>
    %g = graph.weight "bn_g" : tensor<4xf32>
    %bn = graph.batch_norm %pr, %g, %b, %b, %g {epsilon = 1.0e-05 : f32} : tensor<1x4x8x8xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32> -> tensor<1x4x8x8xf32>
    %mp = graph.max_pool %bn {kernel_shape = array<i64: 3, 3>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, ceil_mode = 1 : i64} : tensor<1x4x8x8xf32> -> tensor<1x4x4x4xf32>
    %ap = graph.avg_pool %bn {kernel_shape = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, ceil_mode = 0 : i64, count_include_pad = 0 : i64} : tensor<1x4x8x8xf32> -> tensor<1x4x4x4xf32>
    %gap = graph.global_avg_pool %ap : tensor<1x4x4x4xf32> -> tensor<1x4x1x1xf32>
    %lrn = graph.lrn %mp {size = 3 : i64, alpha = 1.0e-04 : f32, beta = 0.75 : f32, bias = 1.0 : f32} : tensor<1x4x4x4xf32> -> tensor<1x4x4x4xf32>
    %cc = graph.concat %lrn, %d {axis = 1 : i64} : tensor<1x4x4x4xf32>, tensor<1x4x4x4xf32> -> tensor<1x8x4x4xf32>
    %ga = graph.gather %cc, %s {axis = 2 : i64} : tensor<1x8x4x4xf32>, tensor<4x1x1xf32> -> tensor<1x8x4x1x1x4xf32>
    %tr = graph.transpose %cc {perm = array<i64: 0, 2, 3, 1>} : tensor<1x8x4x4xf32> -> tensor<1x4x4x8xf32>
    %fl = graph.flatten %tr {axis = 1 : i64} : tensor<1x4x4x8xf32> -> tensor<1x128xf32>
    %rs = graph.reshape %gap : tensor<1x4x1x1xf32> -> tensor<1x4xf32>
    %fw = graph.weight "fc_w" : tensor<10x128xf32>
    %fb = graph.weight "fc_b" : tensor<10xf32>
    %ge = graph.gemm %fl, %fw bias(%fb : tensor<10xf32>) {alpha = 1.0 : f32, beta = 1.0 : f32, trans_a = 0 : i64, trans_b = 1 : i64} : tensor<1x128xf32>, tensor<10x128xf32> -> tensor<1x10xf32>
    %sm = graph.softmax %ge {axis = 1 : i64} : tensor<1x10xf32> -> tensor<1x10xf32>
    %mm = graph.matmul %m, %n : tensor<2x3x4xf32>, tensor<4x5xf32> -> tensor<2x3x5xf32>
    %gw = graph.weight "gru_w" : tensor<1x6x3xf32>
    %gr = graph.weight "gru_r" : tensor<1x6x2xf32>
    %gy, %gyh = graph.gru %seq, %gw, %gr {hidden_size = 2 : i64, direction = "forward", linear_before_reset = 1 : i64} : tensor<5x1x3xf32>, tensor<1x6x3xf32>, tensor<1x6x2xf32> -> tensor<5x1x1x2xf32>, tensor<1x1x2xf32>
    %lw = graph.weight "lstm_w" : tensor<2x8x3xf32>
    %lr2 = graph.weight "lstm_r" : tensor<2x8x2xf32>
    %lb = graph.weight "lstm_b" : tensor<2x16xf32>
    %h0 = graph.weight "lstm_h0" : tensor<2x1x2xf32>
    %ly, %lyh, %lyc = graph.lstm %seq, %lw, %lr2 b(%lb : tensor<2x16xf32>) initial_h(%h0 : tensor<2x1x2xf32>) initial_c(%h0 : tensor<2x1x2xf32>) {hidden_size = 2 : i64, direction = "bidirectional", input_forget = 0 : i64} : tensor<5x1x3xf32>, tensor<2x8x3xf32>, tensor<2x8x2xf32> -> tensor<5x2x1x2xf32>, tensor<2x1x2xf32>, tensor<2x1x2xf32>
    %rw = graph.weight "rnn_w" : tensor<1x2x3xf32>
    %rr = graph.weight "rnn_r" : tensor<1x2x2xf32>
    %ry, %ryh = graph.rnn %seq, %rw, %rr {hidden_size = 2 : i64, direction = "reverse", clip = 3.0 : f32} : tensor<5x1x3xf32>, tensor<1x2x3xf32>, tensor<1x2x2xf32> -> tensor<5x1x1x2xf32>, tensor<1x1x2xf32>
    func.return %c : tensor<1x4x8x8xf32>
  }
}

// CHECK:      graph.weight "conv_w" : tensor<4x4x3x3xf32>
// CHECK:      graph.conv %{{.*}}, %{{.*}} bias(%{{.*}} : tensor<4xf32>) residual(%{{.*}} : tensor<1x4x8x8xf32>) {{{.*}}act = #graph.act<relu>{{.*}}}
// CHECK:      graph.conv {{.*}}group = 4 : i64, act = #graph.act<clip, 0.0, 6.0>
// CHECK:      graph.add
// CHECK:      graph.mul {{.*}}#graph.act<leaky_relu, 0.1
// CHECK:      graph.sum
// CHECK:      graph.relu
// CHECK:      graph.sigmoid
// CHECK:      graph.tanh
// CHECK:      graph.hard_swish
// CHECK:      graph.clip
// CHECK:      graph.leaky_relu
// CHECK:      graph.hard_sigmoid
// CHECK:      graph.silu
// CHECK:      graph.exp
// CHECK:      graph.log
// CHECK:      graph.sqrt
// CHECK:      graph.neg
// CHECK:      graph.abs
// CHECK:      graph.reciprocal
// CHECK:      graph.erf
// CHECK:      graph.gelu {{.*}}approximate = "tanh"
// CHECK:      graph.sub
// CHECK:      graph.div {{.*}}#graph.act<gelu>
// CHECK:      graph.pow
// CHECK:      graph.max
// CHECK:      graph.min
// CHECK:      graph.equal
// CHECK:      graph.less
// CHECK:      graph.less_or_equal
// CHECK:      graph.and
// CHECK:      graph.or
// CHECK:      graph.not
// CHECK:      graph.where
// CHECK:      graph.slice {{.*}}steps = array<i64: 1, -1, -2, 3>
// CHECK:      graph.pad {{.*}}mode = "reflect"
// CHECK:      graph.expand
// CHECK:      graph.resize {{.*}}mode = "linear"
// CHECK:      graph.reduce {{.*}}kind = "mean"
// CHECK:      graph.layer_norm {{.*}}bias({{.*}}axis = 2 : i64
// CHECK:      graph.prelu
// CHECK:      graph.batch_norm
// CHECK:      graph.max_pool {{.*}}ceil_mode = 1
// CHECK:      graph.avg_pool {{.*}}count_include_pad = 0
// CHECK:      graph.global_avg_pool
// CHECK:      graph.lrn
// CHECK:      graph.concat
// CHECK:      graph.gather
// CHECK:      graph.transpose
// CHECK:      graph.flatten
// CHECK:      graph.reshape
// CHECK:      graph.gemm %{{.*}}, %{{.*}} bias(%{{.*}} : tensor<10xf32>)
// CHECK:      graph.softmax
// CHECK:      graph.matmul {{.*}} -> tensor<2x3x5xf32>
// CHECK:      graph.gru {{.*}} -> tensor<5x1x1x2xf32>, tensor<1x1x2xf32>
// CHECK:      graph.lstm {{.*}} b(%{{.*}} : tensor<2x16xf32>) initial_h({{.*}}) initial_c({{.*}}) {{.*}}"bidirectional"
// CHECK:      graph.rnn {{.*}}clip = 3.0
