// RUN: cd %S && grimc-opt %s -p graph-constant-fold | filecheck %s
// RUN: cd %S && xdsl-opt %s -p graph-constant-fold | filecheck %s
// RUN: grimc-opt %s --weights %S/Inputs/fold.npz -p graph-constant-fold,graph-dce | filecheck %s --check-prefix=DCE

// graph-constant-fold replaces ops whose operands are all graph.weight results
// by a new graph.weight holding the value computed with numpy.
// fold.npz: w [3, 4], v [4], m [4, 4].

builtin.module attributes {graph.weight_store = "Inputs/fold.npz"} {

  // A chain folds step by step: each result is a weight for the next op.
  // CHECK-LABEL: func.func @chain
  // CHECK:       graph.weight "w_transpose" : tensor<4x3xf32>
  // CHECK:       graph.weight "v_reshape" : tensor<4x1xf32>
  // CHECK:       graph.weight "w_transpose_mul" : tensor<4x3xf32>
  // CHECK:       %[[B:.*]] = graph.weight "w_transpose_mul_relu" : tensor<4x3xf32>
  // CHECK-NOT:   graph.transpose
  // CHECK-NOT:   graph.reshape
  // CHECK-NOT:   graph.mul
  // CHECK-NOT:   graph.relu
  // CHECK:       graph.gemm %x, %[[B]]
  // DCE-LABEL:   func.func @chain
  // DCE-NEXT:    %[[B:.*]] = graph.weight "w_transpose_mul_relu" : tensor<4x3xf32>
  // DCE-NEXT:    graph.gemm %x, %[[B]]
  // DCE-NEXT:    func.return
  func.func @chain(%x: tensor<2x3xf32>) -> tensor<2x4xf32> {
    %w = graph.weight "w" : tensor<3x4xf32>
    %v = graph.weight "v" : tensor<4xf32>
    %t = graph.transpose %w {perm = array<i64: 1, 0>} : tensor<3x4xf32> -> tensor<4x3xf32>
    %r = graph.reshape %v : tensor<4xf32> -> tensor<4x1xf32>
    %s = graph.mul %t, %r : tensor<4x3xf32>, tensor<4x1xf32> -> tensor<4x3xf32>
    %b = graph.relu %s : tensor<4x3xf32> -> tensor<4x3xf32>
    %y = graph.gemm %x, %b {alpha = 1.0 : f32, beta = 1.0 : f32, trans_a = 0 : i64, trans_b = 1 : i64} : tensor<2x3xf32>, tensor<4x3xf32> -> tensor<2x4xf32>
    func.return %y : tensor<2x4xf32>
  }

  // Every op kind with an evaluator.
  // CHECK-LABEL: func.func @each_kind
  // CHECK-NOT:   graph.{{[a-z_]+}} %
  // CHECK:       func.return
  func.func @each_kind() -> (tensor<12xf32>, tensor<3x4xf32>, tensor<4xf32>, tensor<7x4xf32>, tensor<3x4xf32>, tensor<3x4xf32>, tensor<3x4xf32>, tensor<3x4xf32>, tensor<3x4xf32>, tensor<3x4xf32>, tensor<3x4xf32>, tensor<3x4xf32>, tensor<3x4xf32>) {
    %w = graph.weight "w" : tensor<3x4xf32>
    %v = graph.weight "v" : tensor<4xf32>
    %m = graph.weight "m" : tensor<4x4xf32>
    %f = graph.flatten %w {axis = 0 : i64} : tensor<3x4xf32> -> tensor<1x12xf32>
    %r = graph.reshape %f : tensor<1x12xf32> -> tensor<12xf32>
    %a = graph.add %w, %v {act = #graph.act<relu>} : tensor<3x4xf32>, tensor<4xf32> -> tensor<3x4xf32>
    %s = graph.sum %v, %v, %v : tensor<4xf32>, tensor<4xf32>, tensor<4xf32> -> tensor<4xf32>
    %c = graph.concat %w, %m {axis = 0 : i64} : tensor<3x4xf32>, tensor<4x4xf32> -> tensor<7x4xf32>
    %mm = graph.matmul %w, %m : tensor<3x4xf32>, tensor<4x4xf32> -> tensor<3x4xf32>
    %g = graph.gemm %w, %m bias(%v : tensor<4xf32>) residual(%w : tensor<3x4xf32>) {alpha = 0.5 : f32, beta = 2.0 : f32, trans_a = 0 : i64, trans_b = 1 : i64, act = #graph.act<tanh>} : tensor<3x4xf32>, tensor<4x4xf32> -> tensor<3x4xf32>
    %p = graph.prelu %w, %v : tensor<3x4xf32>, tensor<4xf32> -> tensor<3x4xf32>
    %u1 = graph.sigmoid %w : tensor<3x4xf32> -> tensor<3x4xf32>
    %u2 = graph.clip %w {min = -0.5 : f32, max = 0.5 : f32} : tensor<3x4xf32> -> tensor<3x4xf32>
    %u3 = graph.leaky_relu %w {alpha = 0.1 : f32} : tensor<3x4xf32> -> tensor<3x4xf32>
    %u4 = graph.hard_sigmoid %w {alpha = 0.2 : f32, beta = 0.5 : f32} : tensor<3x4xf32> -> tensor<3x4xf32>
    %u5 = graph.hard_swish %w : tensor<3x4xf32> -> tensor<3x4xf32>
    %u6 = graph.tanh %w : tensor<3x4xf32> -> tensor<3x4xf32>
    func.return %r, %a, %s, %c, %mm, %g, %p, %u1, %u2, %u3, %u4, %u5, %u6 : tensor<12xf32>, tensor<3x4xf32>, tensor<4xf32>, tensor<7x4xf32>, tensor<3x4xf32>, tensor<3x4xf32>, tensor<3x4xf32>, tensor<3x4xf32>, tensor<3x4xf32>, tensor<3x4xf32>, tensor<3x4xf32>, tensor<3x4xf32>, tensor<3x4xf32>
  }

  // Not folded: a run-time operand, or an op without an evaluator.
  // CHECK-LABEL: func.func @not_folded
  // CHECK:       graph.add %w, %x
  // CHECK:       graph.softmax %w
  func.func @not_folded(%x: tensor<3x4xf32>) -> (tensor<3x4xf32>, tensor<3x4xf32>) {
    %w = graph.weight "w" : tensor<3x4xf32>
    %a = graph.add %w, %x : tensor<3x4xf32>, tensor<3x4xf32> -> tensor<3x4xf32>
    %s = graph.softmax %w {axis = 1 : i64} : tensor<3x4xf32> -> tensor<3x4xf32>
    func.return %a, %s : tensor<3x4xf32>, tensor<3x4xf32>
  }
}
