// RUN: cd %S && grimc-opt %s -p 'bcr-detect{min-weights=0}' | filecheck %s
// RUN: cd %S && xdsl-opt %s -p 'bcr-detect{min-weights=0}' | filecheck %s
// RUN: cd %S && grimc-opt %s -p bcr-detect | filecheck %s --check-prefix=SMALL
// RUN: cd %S && grimc-opt %s -p 'bcr-detect{min-weights=0 depthwise=true}' | filecheck %s --check-prefix=DW
// RUN: cd %S && grimc-opt %s -p 'bcr-detect{min-weights=0 blocks="4x16,8x8" threshold=0.26}' | filecheck %s --check-prefix=OPTS
// RUN: cd %S && grimc-opt %s -p 'bcr-detect{min-weights=0},bcr-reorder,schedule-select' | filecheck %s --check-prefix=CHAIN
// RUN: cd %S && not grimc-opt %s -p 'bcr-detect{blocks="8x16,8y8"}' 2>&1 | filecheck %s --check-prefix=BAD

// bcr-detect finds the BCR structure that the zeros of a weight form (the
// weights in Inputs/detect.npz were pruned by hand with numpy, see
// make_weights.py) and rewrites conv/gemm/matmul/rnn ops whose structure is
// cheap into bcr ops, carrying bias, residual, act and attributes over.

// The BCR pipeline: every sparse op ends with its kernel schedule (a recurrent
// op's input projection: sched.proj).
// CHAIN-LABEL: func.func @gru
// CHAIN:       bcr.gru %x w("gru_w_bcr", #bcr.encoding<{{.*}}r("gru_r_bcr", #bcr.encoding<{{.*}}sched.proj = #sched.{{(spmm|gemv)}}<rows = {{[0-9]}},

// BAD: grimc-opt: error: bcr-detect: block '8y8' in blocks='8x16,8y8' is not ROWSxCOLS

// By default weights under 2048 elements stay dense: only the recurrent ops
// (W and R together hold 2304 and 3072) are large enough.
// SMALL-NOT: bcr.conv2d
// SMALL-NOT: bcr.matmul
// SMALL:     = bcr.gru
// SMALL:     = bcr.rnn

builtin.module attributes {graph.weight_store = "Inputs/detect.npz"} {

  // An 8x16 block structure keeping 8 rows x 4 columns per block; K = 72
  // ends in a partial block. Bias, residual, act, strides and pads carry over
  // and the dense weight, now unused, is gone.
  // CHECK-LABEL: func.func @conv_planted
  // CHECK-NEXT:  %b = graph.weight "conv_b" : tensor<16xf32>
  // CHECK-NEXT:  %y = bcr.conv2d %x weights("conv_w_bcr", #bcr.encoding<matrix = [16, 72], groups = 1, block = [8, 16], keep = [8, 4], balanced, density = 0.2778>) bias(%b : tensor<16xf32>) residual(%r : tensor<1x16x4x4xf32>) {kernel_shape = array<i64: 3, 3>, strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64, act = #graph.act<clip, 0.0, 6.0>} : tensor<1x8x8x8xf32> -> tensor<1x16x4x4xf32>
  // CHECK-NEXT:  func.return %y
  // A tighter threshold keeps it dense; other candidates re-rank the rest.
  // OPTS-LABEL:  func.func @conv_planted
  // OPTS:        graph.conv
  func.func @conv_planted(%x: tensor<1x8x8x8xf32>, %r: tensor<1x16x4x4xf32>) -> tensor<1x16x4x4xf32> {
    %w = graph.weight "conv_w" : tensor<16x8x3x3xf32>
    %b = graph.weight "conv_b" : tensor<16xf32>
    %y = graph.conv %x, %w bias(%b : tensor<16xf32>) residual(%r : tensor<1x16x4x4xf32>) {strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64, act = #graph.act<clip, 0.0, 6.0>} : tensor<1x8x8x8xf32>, tensor<16x8x3x3xf32> -> tensor<1x16x4x4xf32>
    func.return %y : tensor<1x16x4x4xf32>
  }

  // Dense weights and unstructured 15% sparsity (whose nonzeros scatter over
  // every block) stay graph.conv.
  // CHECK-LABEL: func.func @conv_not_bcr
  // CHECK-NOT:   bcr.
  // CHECK:       graph.conv %x, %d
  // CHECK-NEXT:  graph.conv %x, %u
  func.func @conv_not_bcr(%x: tensor<1x8x8x8xf32>) -> (tensor<1x16x8x8xf32>, tensor<1x16x8x8xf32>) {
    %d = graph.weight "dense_w" : tensor<16x8x3x3xf32>
    %u = graph.weight "random_w" : tensor<16x8x3x3xf32>
    %y = graph.conv %x, %d {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x8x8x8xf32>, tensor<16x8x3x3xf32> -> tensor<1x16x8x8xf32>
    %z = graph.conv %x, %u {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x8x8x8xf32>, tensor<16x8x3x3xf32> -> tensor<1x16x8x8xf32>
    func.return %y, %z : tensor<1x16x8x8xf32>, tensor<1x16x8x8xf32>
  }

  // Conv groups: one matrix per group. The shared weight is packed once.
  // CHECK-LABEL: func.func @conv_groups_shared
  // CHECK-NEXT:  %y = bcr.conv2d %x weights("grouped_w_bcr", #bcr.encoding<matrix = [16, 36], groups = 2, block = [8, 16], keep = [8, 4], balanced, density = 0.3333>) {{{.*}}group = 2 : i64, act = #graph.act<relu>}
  // CHECK-NEXT:  %z = bcr.conv2d %x weights("grouped_w_bcr", #bcr.encoding<matrix = [16, 36], groups = 2,
  func.func @conv_groups_shared(%x: tensor<1x8x8x8xf32>) -> (tensor<1x32x8x8xf32>, tensor<1x32x8x8xf32>) {
    %w = graph.weight "grouped_w" : tensor<32x4x3x3xf32>
    %y = graph.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 2 : i64, act = #graph.act<relu>} : tensor<1x8x8x8xf32>, tensor<32x4x3x3xf32> -> tensor<1x32x8x8xf32>
    %z = graph.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 2 : i64} : tensor<1x8x8x8xf32>, tensor<32x4x3x3xf32> -> tensor<1x32x8x8xf32>
    func.return %y, %z : tensor<1x32x8x8xf32>, tensor<1x32x8x8xf32>
  }

  // Depthwise convs stay dense unless asked for (each filter is a 1x9 matrix).
  // CHECK-LABEL: func.func @depthwise
  // CHECK:       graph.conv
  // DW-LABEL:    func.func @depthwise
  // DW:          bcr.conv2d %x weights("dw_w_bcr", #bcr.encoding<matrix = [1, 9], groups = 16, block = [8, 16], keep = [1, 2], balanced, density = 0.2222>)
  func.func @depthwise(%x: tensor<1x16x8x8xf32>) -> tensor<1x16x8x8xf32> {
    %w = graph.weight "dw_w" : tensor<16x1x3x3xf32>
    %y = graph.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 16 : i64} : tensor<1x16x8x8xf32>, tensor<16x1x3x3xf32> -> tensor<1x16x8x8xf32>
    func.return %y : tensor<1x16x8x8xf32>
  }

  // Gemm: alpha is folded into the packed values (so the alpha = 2 use and the
  // alpha = 1 use of fc_w get separate packings), beta * C becomes a bias when
  // C is constant along rows, else a residual; transB = 0 is transposed;
  // transA = 1 stays dense.
  // CHECK-LABEL: func.func @gemm
  // CHECK-NEXT:  %w = graph.weight "fc_w" : tensor<16x64xf32>
  // CHECK-NEXT:  %[[B1:.*]] = graph.weight "fc_b_bias" : tensor<16xf32>
  // CHECK-NEXT:  %y1 = bcr.matmul %a weights("fc_w_bcr", #bcr.encoding<matrix = [16, 64], groups = 1, block = [8, 16], keep = [8, 4], balanced, density = 0.25>) bias(%[[B1]] : tensor<16xf32>) {act = #graph.act<relu>} : tensor<2x64xf32> -> tensor<2x16xf32>
  // CHECK-NEXT:  %[[B2:.*]] = graph.weight "fc_c_row_bias" : tensor<16xf32>
  // CHECK-NEXT:  %y2 = bcr.matmul %a weights("fc_wt_bcr", #bcr.encoding<matrix = [16, 64], {{.*}}>) bias(%[[B2]] : tensor<16xf32>) residual(%res : tensor<2x16xf32>) : tensor<2x64xf32> -> tensor<2x16xf32>
  // CHECK-NEXT:  %[[R3:.*]] = graph.weight "fc_c_full_full" : tensor<2x16xf32>
  // CHECK-NEXT:  %y3 = bcr.matmul %a weights("fc_w_bcr_1", #bcr.encoding<matrix = [16, 64], {{.*}}>) residual(%[[R3]] : tensor<2x16xf32>) : tensor<2x64xf32> -> tensor<2x16xf32>
  // CHECK-NEXT:  %y4 = graph.gemm %at, %w {{.*}}trans_a = 1 : i64
  // OPTS-LABEL:  func.func @gemm
  // OPTS:        bcr.matmul %a weights("fc_w_bcr", #bcr.encoding<matrix = [16, 64], groups = 1, block = [8, 8], keep = [8, 4], density = 0.25>)
  func.func @gemm(%a: tensor<2x64xf32>, %at: tensor<64x2xf32>, %res: tensor<2x16xf32>) -> (tensor<2x16xf32>, tensor<2x16xf32>, tensor<2x16xf32>, tensor<2x16xf32>) {
    %w = graph.weight "fc_w" : tensor<16x64xf32>
    %wt = graph.weight "fc_wt" : tensor<64x16xf32>
    %b = graph.weight "fc_b" : tensor<16xf32>
    %crow = graph.weight "fc_c_row" : tensor<1x16xf32>
    %cfull = graph.weight "fc_c_full" : tensor<2x16xf32>
    %y1 = graph.gemm %a, %w bias(%b : tensor<16xf32>) {alpha = 2.0 : f32, beta = 0.5 : f32, trans_a = 0 : i64, trans_b = 1 : i64, act = #graph.act<relu>} : tensor<2x64xf32>, tensor<16x64xf32> -> tensor<2x16xf32>
    %y2 = graph.gemm %a, %wt bias(%crow : tensor<1x16xf32>) residual(%res : tensor<2x16xf32>) {alpha = 1.0 : f32, beta = 1.0 : f32, trans_a = 0 : i64, trans_b = 0 : i64} : tensor<2x64xf32>, tensor<64x16xf32> -> tensor<2x16xf32>
    %y3 = graph.gemm %a, %w bias(%cfull : tensor<2x16xf32>) {alpha = 1.0 : f32, beta = 1.0 : f32, trans_a = 0 : i64, trans_b = 1 : i64} : tensor<2x64xf32>, tensor<16x64xf32> -> tensor<2x16xf32>
    %y4 = graph.gemm %at, %w {alpha = 1.0 : f32, beta = 1.0 : f32, trans_a = 1 : i64, trans_b = 1 : i64} : tensor<64x2xf32>, tensor<16x64xf32> -> tensor<2x16xf32>
    func.return %y1, %y2, %y3, %y4 : tensor<2x16xf32>, tensor<2x16xf32>, tensor<2x16xf32>, tensor<2x16xf32>
  }

  // MatMul by a constant [K, N]: W = B^T, batch dims stay, act carries over.
  // CHECK-LABEL: func.func @matmul
  // CHECK-NEXT:  %y = bcr.matmul %a weights("proj_w_bcr", #bcr.encoding<matrix = [16, 64], groups = 1, block = [4, 16], keep = [4, 2], balanced, density = 0.125>) {act = #graph.act<tanh>} : tensor<5x1x64xf32> -> tensor<5x1x16xf32>
  func.func @matmul(%a: tensor<5x1x64xf32>) -> tensor<5x1x16xf32> {
    %w = graph.weight "proj_w" : tensor<64x16xf32>
    %y = graph.matmul %a, %w {act = #graph.act<tanh>} : tensor<5x1x64xf32>, tensor<64x16xf32> -> tensor<5x1x16xf32>
    func.return %y : tensor<5x1x16xf32>
  }

  // A constant row-vector Add that is the matmul's only use becomes its bias,
  // the Add's act its act (the exporters' Linear: MatMul + Add); an Add of a
  // non-constant stays.
  // CHECK-LABEL: func.func @matmul_bias
  // CHECK-NEXT:  %[[B:.*]] = graph.weight "fc_b_bias{{.*}}" : tensor<16xf32>
  // CHECK-NEXT:  %y = bcr.matmul %a weights("proj_w_bcr", {{.*}}) bias(%[[B]] : tensor<16xf32>) {act = #graph.act<gelu>} : tensor<5x1x64xf32> -> tensor<5x1x16xf32>
  // CHECK-NEXT:  %[[M2:.*]] = bcr.matmul %a weights("proj_w_bcr", {{.*}}) : tensor<5x1x64xf32> -> tensor<5x1x16xf32>
  // CHECK-NEXT:  %z = graph.add %[[M2]], %r
  // CHECK-NEXT:  func.return %y, %z
  func.func @matmul_bias(%a: tensor<5x1x64xf32>, %r: tensor<16xf32>) -> (tensor<5x1x16xf32>, tensor<5x1x16xf32>) {
    %w = graph.weight "proj_w" : tensor<64x16xf32>
    %m = graph.matmul %a, %w : tensor<5x1x64xf32>, tensor<64x16xf32> -> tensor<5x1x16xf32>
    %b = graph.weight "fc_b" : tensor<16xf32>
    %y = graph.add %b, %m {act = #graph.act<gelu>} : tensor<16xf32>, tensor<5x1x16xf32> -> tensor<5x1x16xf32>
    %m2 = graph.matmul %a, %w : tensor<5x1x64xf32>, tensor<64x16xf32> -> tensor<5x1x16xf32>
    %z = graph.add %m2, %r : tensor<5x1x16xf32>, tensor<16xf32> -> tensor<5x1x16xf32>
    func.return %y, %z : tensor<5x1x16xf32>, tensor<5x1x16xf32>
  }

  // GRU: W and R, one matrix per direction each; bias and attributes carry over.
  // CHECK-LABEL: func.func @gru
  // CHECK-NEXT:  %b = graph.weight "gru_b" : tensor<1x96xf32>
  // CHECK-NEXT:  %y, %yh = bcr.gru %x w("gru_w_bcr", #bcr.encoding<matrix = [48, 32], groups = 1, block = [8, 16], keep = [8, 4], balanced, density = 0.25>) r("gru_r_bcr", #bcr.encoding<matrix = [48, 16], groups = 1, block = [8, 16], keep = [8, 4], balanced, density = 0.25>) b(%b : tensor<1x96xf32>) {linear_before_reset = 1 : i64, hidden_size = 16 : i64, direction = "forward"}
  func.func @gru(%x: tensor<5x1x32xf32>) -> tensor<5x1x1x16xf32> {
    %w = graph.weight "gru_w" : tensor<1x48x32xf32>
    %r = graph.weight "gru_r" : tensor<1x48x16xf32>
    %b = graph.weight "gru_b" : tensor<1x96xf32>
    %y, %yh = graph.gru %x, %w, %r b(%b : tensor<1x96xf32>) {hidden_size = 16 : i64, direction = "forward", linear_before_reset = 1 : i64} : tensor<5x1x32xf32>, tensor<1x48x32xf32>, tensor<1x48x16xf32> -> tensor<5x1x1x16xf32>, tensor<1x1x16xf32>
    func.return %y : tensor<5x1x1x16xf32>
  }

  // Only R is sparse: the op goes sparse and the dense W is stored in BCR form
  // with its cheapest block (everything kept).
  // CHECK-LABEL: func.func @rnn_sparse_r
  // CHECK-NEXT:  %y, %yh = bcr.rnn %x w("rnn_w_bcr", #bcr.encoding<matrix = [32, 16], groups = 2, block = [16, 32], keep = [16, 16], balanced, density = 1.0>) r("rnn_r_bcr", #bcr.encoding<matrix = [32, 32], groups = 2, block = [8, 16], keep = [8, 4], balanced, density = 0.25>) {hidden_size = 32 : i64, direction = "bidirectional", clip = 5.000000e+00 : f32}
  func.func @rnn_sparse_r(%x: tensor<5x1x16xf32>) -> tensor<5x2x1x32xf32> {
    %w = graph.weight "rnn_w" : tensor<2x32x16xf32>
    %r = graph.weight "rnn_r" : tensor<2x32x32xf32>
    %y, %yh = graph.rnn %x, %w, %r {hidden_size = 32 : i64, direction = "bidirectional", clip = 5.0 : f32} : tensor<5x1x16xf32>, tensor<2x32x16xf32>, tensor<2x32x32xf32> -> tensor<5x2x1x32xf32>, tensor<2x1x32xf32>
    func.return %y : tensor<5x2x1x32xf32>
  }
}
