// RUN: cd %S && grimc-opt %s -p graph-bn-fold | filecheck %s
// RUN: cd %S && xdsl-opt %s -p graph-bn-fold | filecheck %s
// RUN: grimc-opt %s --weights %S/Inputs/bn.npz -p graph-bn-fold,graph-dce | filecheck %s --check-prefix=DCE

// graph-bn-fold folds a BatchNorm into the conv/gemm feeding it when that
// producer has no other use, no act, no residual, and constant weights.

builtin.module attributes {graph.weight_store = "Inputs/bn.npz"} {

  // CHECK-LABEL: func.func @conv_bias
  // CHECK:       %[[W:.*]] = graph.weight "conv_w_bn" : tensor<4x3x3x3xf32>
  // CHECK-NEXT:  %[[B:.*]] = graph.weight "conv_b_bn" : tensor<4xf32>
  // CHECK-NEXT:  %[[Y:.*]] = graph.conv %x, %[[W]] bias(%[[B]] : tensor<4xf32>) {strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64}
  // CHECK-NOT:   graph.batch_norm
  // CHECK:       func.return %[[Y]]
  // DCE-LABEL:   func.func @conv_bias
  // DCE-NEXT:    graph.weight "conv_w_bn"
  // DCE-NEXT:    graph.weight "conv_b_bn"
  // DCE-NEXT:    graph.conv
  // DCE-NEXT:    func.return
  func.func @conv_bias(%x: tensor<1x3x8x8xf32>) -> tensor<1x4x4x4xf32> {
    %w = graph.weight "conv_w" : tensor<4x3x3x3xf32>
    %b = graph.weight "conv_b" : tensor<4xf32>
    %s = graph.weight "bn_scale" : tensor<4xf32>
    %t = graph.weight "bn_bias" : tensor<4xf32>
    %m = graph.weight "bn_mean" : tensor<4xf32>
    %v = graph.weight "bn_var" : tensor<4xf32>
    %y = graph.conv %x, %w bias(%b : tensor<4xf32>) {strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32> -> tensor<1x4x4x4xf32>
    %n = graph.batch_norm %y, %s, %t, %m, %v {epsilon = 1.0e-05 : f32} : tensor<1x4x4x4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32> -> tensor<1x4x4x4xf32>
    func.return %n : tensor<1x4x4x4xf32>
  }

  // A conv without bias gets one; the conv's weight may be shared: the other
  // conv keeps the original weight, and fresh keys never collide.
  // CHECK-LABEL: func.func @conv_no_bias_shared_weight
  // CHECK:       %[[W:.*]] = graph.weight "conv_w_bn_1" : tensor<4x3x3x3xf32>
  // CHECK-NEXT:  %[[B:.*]] = graph.weight "conv_w_b_bn" : tensor<4xf32>
  // CHECK-NEXT:  %[[Y:.*]] = graph.conv %x, %[[W]] bias(%[[B]] : tensor<4xf32>)
  // CHECK:       %[[Z:.*]] = graph.conv %x, %w {
  // CHECK-NOT:   graph.batch_norm
  // CHECK:       func.return %[[Y]], %[[Z]]
  func.func @conv_no_bias_shared_weight(%x: tensor<1x3x8x8xf32>) -> (tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>) {
    %w = graph.weight "conv_w" : tensor<4x3x3x3xf32>
    %s = graph.weight "bn_scale" : tensor<4xf32>
    %t = graph.weight "bn_bias" : tensor<4xf32>
    %m = graph.weight "bn_mean" : tensor<4xf32>
    %v = graph.weight "bn_var" : tensor<4xf32>
    %y = graph.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32> -> tensor<1x4x8x8xf32>
    %n = graph.batch_norm %y, %s, %t, %m, %v {epsilon = 1.0e-05 : f32} : tensor<1x4x8x8xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32> -> tensor<1x4x8x8xf32>
    %z = graph.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32> -> tensor<1x4x8x8xf32>
    func.return %n, %z : tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>
  }

  // Gemm with transB = 1: B and C absorb the BN, beta becomes 1.
  // CHECK-LABEL: func.func @gemm_trans_b
  // CHECK:       %[[B:.*]] = graph.weight "fc_w_bn" : tensor<6x5xf32>
  // CHECK-NEXT:  %[[C:.*]] = graph.weight "fc_b_bn" : tensor<6xf32>
  // CHECK-NEXT:  %[[Y:.*]] = graph.gemm %x, %[[B]] bias(%[[C]] : tensor<6xf32>) {alpha = 2.000000e+00 : f32, beta = 1.000000e+00 : f32, trans_a = 0 : i64, trans_b = 1 : i64}
  // CHECK-NOT:   graph.batch_norm
  // CHECK:       func.return %[[Y]]
  func.func @gemm_trans_b(%x: tensor<2x5xf32>) -> tensor<2x6xf32> {
    %w = graph.weight "fc_w" : tensor<6x5xf32>
    %c = graph.weight "fc_b" : tensor<6xf32>
    %s = graph.weight "fc_bn_scale" : tensor<6xf32>
    %t = graph.weight "fc_bn_bias" : tensor<6xf32>
    %m = graph.weight "fc_bn_mean" : tensor<6xf32>
    %v = graph.weight "fc_bn_var" : tensor<6xf32>
    %y = graph.gemm %x, %w bias(%c : tensor<6xf32>) {alpha = 2.0 : f32, beta = 0.5 : f32, trans_a = 0 : i64, trans_b = 1 : i64} : tensor<2x5xf32>, tensor<6x5xf32> -> tensor<2x6xf32>
    %n = graph.batch_norm %y, %s, %t, %m, %v {epsilon = 1.0e-03 : f32} : tensor<2x6xf32>, tensor<6xf32>, tensor<6xf32>, tensor<6xf32>, tensor<6xf32> -> tensor<2x6xf32>
    func.return %n : tensor<2x6xf32>
  }

  // Gemm with transB = 0 and no C.
  // CHECK-LABEL: func.func @gemm_no_c
  // CHECK:       %[[B:.*]] = graph.weight "fc_wt_bn" : tensor<5x6xf32>
  // CHECK-NEXT:  %[[C:.*]] = graph.weight "fc_wt_c_bn" : tensor<6xf32>
  // CHECK-NEXT:  graph.gemm %x, %[[B]] bias(%[[C]] : tensor<6xf32>) {{.*}}trans_b = 0 : i64}
  // CHECK-NOT:   graph.batch_norm
  func.func @gemm_no_c(%x: tensor<2x5xf32>) -> tensor<2x6xf32> {
    %w = graph.weight "fc_wt" : tensor<5x6xf32>
    %s = graph.weight "fc_bn_scale" : tensor<6xf32>
    %t = graph.weight "fc_bn_bias" : tensor<6xf32>
    %m = graph.weight "fc_bn_mean" : tensor<6xf32>
    %v = graph.weight "fc_bn_var" : tensor<6xf32>
    %y = graph.gemm %x, %w {alpha = 1.0 : f32, beta = 1.0 : f32, trans_a = 0 : i64, trans_b = 0 : i64} : tensor<2x5xf32>, tensor<5x6xf32> -> tensor<2x6xf32>
    %n = graph.batch_norm %y, %s, %t, %m, %v {epsilon = 1.0e-05 : f32} : tensor<2x6xf32>, tensor<6xf32>, tensor<6xf32>, tensor<6xf32>, tensor<6xf32> -> tensor<2x6xf32>
    func.return %n : tensor<2x6xf32>
  }

  // Not folded: the conv result has a second use.
  // CHECK-LABEL: func.func @conv_two_uses
  // CHECK-NOT:   _bn"
  // CHECK:       %[[Y:.*]] = graph.conv %x, %w
  // CHECK-NEXT:  %[[N:.*]] = graph.batch_norm %[[Y]]
  // CHECK-NEXT:  func.return %[[N]], %[[Y]]
  func.func @conv_two_uses(%x: tensor<1x3x8x8xf32>) -> (tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>) {
    %w = graph.weight "conv_w" : tensor<4x3x3x3xf32>
    %s = graph.weight "bn_scale" : tensor<4xf32>
    %t = graph.weight "bn_bias" : tensor<4xf32>
    %m = graph.weight "bn_mean" : tensor<4xf32>
    %v = graph.weight "bn_var" : tensor<4xf32>
    %y = graph.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32> -> tensor<1x4x8x8xf32>
    %n = graph.batch_norm %y, %s, %t, %m, %v {epsilon = 1.0e-05 : f32} : tensor<1x4x8x8xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32> -> tensor<1x4x8x8xf32>
    func.return %n, %y : tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>
  }

  // Not folded: the act and the residual are applied before the BN.
  // CHECK-LABEL: func.func @conv_act_or_residual
  // CHECK-NOT:   _bn"
  // CHECK:       graph.batch_norm
  // CHECK:       graph.batch_norm
  func.func @conv_act_or_residual(%x: tensor<1x3x8x8xf32>, %r: tensor<1x4x8x8xf32>) -> (tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>) {
    %w = graph.weight "conv_w" : tensor<4x3x3x3xf32>
    %s = graph.weight "bn_scale" : tensor<4xf32>
    %t = graph.weight "bn_bias" : tensor<4xf32>
    %m = graph.weight "bn_mean" : tensor<4xf32>
    %v = graph.weight "bn_var" : tensor<4xf32>
    %y = graph.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64, act = #graph.act<relu>} : tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32> -> tensor<1x4x8x8xf32>
    %n = graph.batch_norm %y, %s, %t, %m, %v {epsilon = 1.0e-05 : f32} : tensor<1x4x8x8xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32> -> tensor<1x4x8x8xf32>
    %z = graph.conv %x, %w residual(%r : tensor<1x4x8x8xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32> -> tensor<1x4x8x8xf32>
    %o = graph.batch_norm %z, %s, %t, %m, %v {epsilon = 1.0e-05 : f32} : tensor<1x4x8x8xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32> -> tensor<1x4x8x8xf32>
    func.return %n, %o : tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>
  }

  // Not folded: run-time weight, run-time statistics, or a producer that is
  // not linear (the BN stays a graph.batch_norm for code generation).
  // CHECK-LABEL: func.func @not_constant_or_not_linear
  // CHECK-NOT:   _bn"
  // CHECK-COUNT-3: graph.batch_norm
  func.func @not_constant_or_not_linear(%x: tensor<1x3x8x8xf32>, %wa: tensor<4x3x3x3xf32>, %sa: tensor<4xf32>) -> (tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>) {
    %w = graph.weight "conv_w" : tensor<4x3x3x3xf32>
    %s = graph.weight "bn_scale" : tensor<4xf32>
    %t = graph.weight "bn_bias" : tensor<4xf32>
    %m = graph.weight "bn_mean" : tensor<4xf32>
    %v = graph.weight "bn_var" : tensor<4xf32>
    %y = graph.conv %x, %wa {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32> -> tensor<1x4x8x8xf32>
    %n = graph.batch_norm %y, %s, %t, %m, %v {epsilon = 1.0e-05 : f32} : tensor<1x4x8x8xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32> -> tensor<1x4x8x8xf32>
    %z = graph.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32> -> tensor<1x4x8x8xf32>
    %o = graph.batch_norm %z, %sa, %t, %m, %v {epsilon = 1.0e-05 : f32} : tensor<1x4x8x8xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32> -> tensor<1x4x8x8xf32>
    %p = graph.max_pool %o {kernel_shape = array<i64: 1, 1>, strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, ceil_mode = 0 : i64} : tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>
    %q = graph.batch_norm %p, %s, %t, %m, %v {epsilon = 1.0e-05 : f32} : tensor<1x4x8x8xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32> -> tensor<1x4x8x8xf32>
    func.return %n, %o, %q : tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>
  }
}
