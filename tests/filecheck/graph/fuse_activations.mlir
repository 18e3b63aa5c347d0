// RUN: grimc-opt %s -p graph-fuse-activations | filecheck %s
// RUN: xdsl-opt %s -p graph-fuse-activations | filecheck %s

// graph-fuse-activations moves activations and same-shape residual adds into
// the epilogue (`act`, `residual`) of the op producing their operand.

// CHECK-LABEL: func.func @each_producer_and_activation
// CHECK-NEXT:  %[[C:.*]] = graph.conv %x, %w {{.*}}act = #graph.act<relu>}
// CHECK-NEXT:  %[[G:.*]] = graph.gemm %a, %b {{.*}}act = #graph.act<clip, 0.0, 6.0>}
// CHECK-NEXT:  %[[M:.*]] = graph.matmul %a, %bt {act = #graph.act<leaky_relu, 0.125>}
// CHECK-NEXT:  %[[A:.*]] = graph.add %a, %a {act = #graph.act<sigmoid>}
// CHECK-NEXT:  %[[P:.*]] = graph.mul %a, %a {act = #graph.act<hard_sigmoid, 0.25, 0.5>}
// CHECK-NEXT:  %[[T:.*]] = graph.add %a, %a {act = #graph.act<tanh>}
// CHECK-NEXT:  %[[S:.*]] = graph.mul %a, %a {act = #graph.act<hard_swish>}
// CHECK-NEXT:  func.return %[[C]], %[[G]], %[[M]], %[[A]], %[[P]], %[[T]], %[[S]]
func.func @each_producer_and_activation(%x: tensor<1x4x8x8xf32>, %w: tensor<4x4x3x3xf32>, %a: tensor<2x5xf32>, %b: tensor<5x5xf32>, %bt: tensor<5x5xf32>) -> (tensor<1x4x8x8xf32>, tensor<2x5xf32>, tensor<2x5xf32>, tensor<2x5xf32>, tensor<2x5xf32>, tensor<2x5xf32>, tensor<2x5xf32>) {
  %c = graph.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x4x8x8xf32>, tensor<4x4x3x3xf32> -> tensor<1x4x8x8xf32>
  %c1 = graph.relu %c : tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>
  %g = graph.gemm %a, %b {alpha = 1.0 : f32, beta = 1.0 : f32, trans_a = 0 : i64, trans_b = 1 : i64} : tensor<2x5xf32>, tensor<5x5xf32> -> tensor<2x5xf32>
  %g1 = graph.clip %g {min = 0.0 : f32, max = 6.0 : f32} : tensor<2x5xf32> -> tensor<2x5xf32>
  %m = graph.matmul %a, %bt : tensor<2x5xf32>, tensor<5x5xf32> -> tensor<2x5xf32>
  %m1 = graph.leaky_relu %m {alpha = 0.125 : f32} : tensor<2x5xf32> -> tensor<2x5xf32>
  %s = graph.add %a, %a : tensor<2x5xf32>, tensor<2x5xf32> -> tensor<2x5xf32>
  %s1 = graph.sigmoid %s : tensor<2x5xf32> -> tensor<2x5xf32>
  %p = graph.mul %a, %a : tensor<2x5xf32>, tensor<2x5xf32> -> tensor<2x5xf32>
  %p1 = graph.hard_sigmoid %p {alpha = 0.25 : f32, beta = 0.5 : f32} : tensor<2x5xf32> -> tensor<2x5xf32>
  %t = graph.add %a, %a : tensor<2x5xf32>, tensor<2x5xf32> -> tensor<2x5xf32>
  %t1 = graph.tanh %t : tensor<2x5xf32> -> tensor<2x5xf32>
  %h = graph.mul %a, %a : tensor<2x5xf32>, tensor<2x5xf32> -> tensor<2x5xf32>
  %h1 = graph.hard_swish %h : tensor<2x5xf32> -> tensor<2x5xf32>
  func.return %c1, %g1, %m1, %s1, %p1, %t1, %h1 : tensor<1x4x8x8xf32>, tensor<2x5xf32>, tensor<2x5xf32>, tensor<2x5xf32>, tensor<2x5xf32>, tensor<2x5xf32>, tensor<2x5xf32>
}

// Not fused: a second use of the producer, a producer that already has an
// act (activations are not composed), prelu, and an op without an epilogue.
// CHECK-LABEL: func.func @not_fused
// CHECK-NEXT:  %[[C:.*]] = graph.conv
// CHECK-NOT:   act
// CHECK-NEXT:  graph.relu %[[C]]
// CHECK-NEXT:  %[[A:.*]] = graph.add %a, %a {act = #graph.act<tanh>}
// CHECK-NEXT:  graph.relu %[[A]]
// CHECK-NEXT:  %[[P:.*]] = graph.prelu
// CHECK-NEXT:  graph.relu %[[P]]
// CHECK-NEXT:  %[[S:.*]] = graph.sigmoid
// CHECK-NEXT:  graph.relu %[[S]]
func.func @not_fused(%x: tensor<1x4x8x8xf32>, %w: tensor<4x4x3x3xf32>, %a: tensor<2x5xf32>, %slope: tensor<5xf32>) -> (tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>, tensor<2x5xf32>, tensor<2x5xf32>, tensor<2x5xf32>) {
  %c = graph.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x4x8x8xf32>, tensor<4x4x3x3xf32> -> tensor<1x4x8x8xf32>
  %c1 = graph.relu %c : tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>
  %t = graph.add %a, %a {act = #graph.act<tanh>} : tensor<2x5xf32>, tensor<2x5xf32> -> tensor<2x5xf32>
  %t1 = graph.relu %t : tensor<2x5xf32> -> tensor<2x5xf32>
  %p = graph.prelu %a, %slope : tensor<2x5xf32>, tensor<5xf32> -> tensor<2x5xf32>
  %p1 = graph.relu %p : tensor<2x5xf32> -> tensor<2x5xf32>
  %s = graph.sigmoid %a : tensor<2x5xf32> -> tensor<2x5xf32>
  %s1 = graph.relu %s : tensor<2x5xf32> -> tensor<2x5xf32>
  func.return %c, %c1, %t1, %p1, %s1 : tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>, tensor<2x5xf32>, tensor<2x5xf32>, tensor<2x5xf32>
}

// ResNet basic block: conv -> add(identity) -> relu becomes one conv.
// CHECK-LABEL: func.func @resnet_block
// CHECK-NEXT:  %[[H:.*]] = graph.conv %x, %w1 {{.*}}act = #graph.act<relu>}
// CHECK-NEXT:  %[[Y:.*]] = graph.conv %[[H]], %w2 residual(%x : tensor<1x4x8x8xf32>) {{.*}}act = #graph.act<relu>}
// CHECK-NEXT:  func.return %[[Y]]
func.func @resnet_block(%x: tensor<1x4x8x8xf32>, %w1: tensor<4x4x3x3xf32>, %w2: tensor<4x4x3x3xf32>) -> tensor<1x4x8x8xf32> {
  %c1 = graph.conv %x, %w1 {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x4x8x8xf32>, tensor<4x4x3x3xf32> -> tensor<1x4x8x8xf32>
  %r1 = graph.relu %c1 : tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>
  %c2 = graph.conv %r1, %w2 {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x4x8x8xf32>, tensor<4x4x3x3xf32> -> tensor<1x4x8x8xf32>
  %s = graph.add %c2, %x : tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>
  %y = graph.relu %s : tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>
  func.return %y : tensor<1x4x8x8xf32>
}

// Residual on the right, an add that already carries the act, and a gemm.
// CHECK-LABEL: func.func @residual_forms
// CHECK-NEXT:  %[[C:.*]] = graph.conv %x, %w residual(%x : tensor<1x4x8x8xf32>) {{.*}}act = #graph.act<relu>}
// CHECK-NEXT:  %[[G:.*]] = graph.gemm %a, %b residual(%a : tensor<2x5xf32>) {{.*}}act = #graph.act<tanh>}
// CHECK-NEXT:  func.return %[[C]], %[[G]]
func.func @residual_forms(%x: tensor<1x4x8x8xf32>, %w: tensor<4x4x3x3xf32>, %a: tensor<2x5xf32>, %b: tensor<5x5xf32>) -> (tensor<1x4x8x8xf32>, tensor<2x5xf32>) {
  %c = graph.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x4x8x8xf32>, tensor<4x4x3x3xf32> -> tensor<1x4x8x8xf32>
  %s = graph.add %x, %c {act = #graph.act<relu>} : tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>
  %g = graph.gemm %a, %b {alpha = 1.0 : f32, beta = 1.0 : f32, trans_a = 0 : i64, trans_b = 0 : i64} : tensor<2x5xf32>, tensor<5x5xf32> -> tensor<2x5xf32>
  %t = graph.add %g, %a : tensor<2x5xf32>, tensor<2x5xf32> -> tensor<2x5xf32>
  %u = graph.tanh %t : tensor<2x5xf32> -> tensor<2x5xf32>
  func.return %s, %u : tensor<1x4x8x8xf32>, tensor<2x5xf32>
}

// Downsampling block: the shortcut conv comes after the main conv, so the main
// conv becomes the shortcut conv's residual (never the other way round).
// CHECK-LABEL: func.func @two_convs
// CHECK-NEXT:  %[[M:.*]] = graph.conv %x, %w {
// CHECK-NEXT:  %[[Y:.*]] = graph.conv %x, %wd residual(%[[M]] : tensor<1x4x8x8xf32>)
// CHECK-NEXT:  func.return %[[Y]]
func.func @two_convs(%x: tensor<1x4x8x8xf32>, %w: tensor<4x4x3x3xf32>, %wd: tensor<4x4x1x1xf32>) -> tensor<1x4x8x8xf32> {
  %m = graph.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x4x8x8xf32>, tensor<4x4x3x3xf32> -> tensor<1x4x8x8xf32>
  %d = graph.conv %x, %wd {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x4x8x8xf32>, tensor<4x4x1x1xf32> -> tensor<1x4x8x8xf32>
  %s = graph.add %m, %d : tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>
  func.return %s : tensor<1x4x8x8xf32>
}

// Not fused as residual: the other operand is defined after the conv, it
// broadcasts (a bias, not a residual), or the conv already has a residual or
// an act. The first add still takes the relu as its own act.
// CHECK-LABEL: func.func @residual_not_fused
// CHECK:       %[[C:.*]] = graph.conv %x, %w {
// CHECK-NEXT:  %[[L:.*]] = graph.sigmoid %x
// CHECK-NEXT:  graph.add %[[C]], %[[L]] {act = #graph.act<relu>}
// CHECK:       graph.add %{{.*}}, %bias :
// CHECK:       graph.conv %x, %w residual(%x : tensor<1x4x8x8xf32>)
// CHECK-NEXT:  graph.add
// CHECK:       graph.conv %x, %w {{.*}}act = #graph.act<relu>}
// CHECK-NEXT:  graph.add
func.func @residual_not_fused(%x: tensor<1x4x8x8xf32>, %w: tensor<4x4x3x3xf32>, %bias: tensor<1x4x1x1xf32>) -> (tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>) {
  %c = graph.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x4x8x8xf32>, tensor<4x4x3x3xf32> -> tensor<1x4x8x8xf32>
  %late = graph.sigmoid %x : tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>
  %s = graph.add %c, %late : tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>
  %r = graph.relu %s : tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>
  %c2 = graph.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x4x8x8xf32>, tensor<4x4x3x3xf32> -> tensor<1x4x8x8xf32>
  %b = graph.add %c2, %bias : tensor<1x4x8x8xf32>, tensor<1x4x1x1xf32> -> tensor<1x4x8x8xf32>
  %c3 = graph.conv %x, %w residual(%x : tensor<1x4x8x8xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x4x8x8xf32>, tensor<4x4x3x3xf32> -> tensor<1x4x8x8xf32>
  %d = graph.add %c3, %x : tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>
  %c4 = graph.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64, act = #graph.act<relu>} : tensor<1x4x8x8xf32>, tensor<4x4x3x3xf32> -> tensor<1x4x8x8xf32>
  %e = graph.add %c4, %x : tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>
  func.return %r, %b, %d, %e : tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>
}

// SiLU as exporters write it: the conv output feeds both a sigmoid and the mul
// (two users), yet x * sigmoid(x) becomes one silu that then fuses into the conv.
// With a third user of the conv output it stays one standalone silu.
// CHECK-LABEL: func.func @silu
// CHECK-NEXT:  %[[C:.*]] = graph.conv %x, %w {{.*}}act = #graph.act<silu>}
// CHECK-NEXT:  %[[D:.*]] = graph.conv %x, %w
// CHECK-NOT:   act
// CHECK-NEXT:  %[[S:.*]] = graph.silu %[[D]]
// CHECK-NEXT:  %[[R:.*]] = graph.relu %[[D]]
// CHECK-NEXT:  func.return %[[C]], %[[S]], %[[R]]
func.func @silu(%x: tensor<1x4x8x8xf32>, %w: tensor<4x4x3x3xf32>) -> (tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>) {
  %c = graph.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x4x8x8xf32>, tensor<4x4x3x3xf32> -> tensor<1x4x8x8xf32>
  %s = graph.sigmoid %c : tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>
  %y = graph.mul %s, %c : tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>
  %d = graph.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x4x8x8xf32>, tensor<4x4x3x3xf32> -> tensor<1x4x8x8xf32>
  %t = graph.sigmoid %d : tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>
  %z = graph.mul %d, %t : tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>
  %r = graph.relu %d : tensor<1x4x8x8xf32> -> tensor<1x4x8x8xf32>
  func.return %y, %z, %r : tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>
}
