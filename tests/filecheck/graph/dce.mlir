// RUN: grimc-opt %s -p graph-dce | filecheck %s
// RUN: xdsl-opt %s -p graph-dce | filecheck %s

// graph-dce erases unused graph ops (weights included) and nothing else.

// CHECK-LABEL: func.func @dead_chain
// CHECK-NEXT:  %[[W:.*]] = graph.weight "used" : tensor<4xf32>
// CHECK-NEXT:  %[[Y:.*]] = graph.add %x, %[[W]]
// CHECK-NEXT:  func.return %[[Y]]
func.func @dead_chain(%x: tensor<4xf32>) -> tensor<4xf32> {
  %u = graph.weight "unused" : tensor<4xf32>
  %w = graph.weight "used" : tensor<4xf32>
  %d = graph.weight "dead_chain" : tensor<4xf32>
  %d1 = graph.relu %d : tensor<4xf32> -> tensor<4xf32>
  %d2 = graph.mul %d1, %x : tensor<4xf32>, tensor<4xf32> -> tensor<4xf32>
  %y = graph.add %x, %w : tensor<4xf32>, tensor<4xf32> -> tensor<4xf32>
  func.return %y : tensor<4xf32>
}

// A recurrent cell stays while any of its results is used; ops of other
// dialects are left to xDSL's own `dce`.
// CHECK-LABEL: func.func @partial_use_and_other_dialects
// CHECK-NEXT:  graph.weight "w"
// CHECK-NEXT:  graph.weight "r"
// CHECK-NEXT:  %{{.*}}, %[[H:.*]] = graph.rnn
// CHECK-NEXT:  arith.constant
// CHECK-NEXT:  func.return %[[H]]
func.func @partial_use_and_other_dialects(%x: tensor<5x1x3xf32>) -> tensor<1x1x2xf32> {
  %w = graph.weight "w" : tensor<1x2x3xf32>
  %r = graph.weight "r" : tensor<1x2x2xf32>
  %y, %h = graph.rnn %x, %w, %r {hidden_size = 2 : i64, direction = "forward"} : tensor<5x1x3xf32>, tensor<1x2x3xf32>, tensor<1x2x2xf32> -> tensor<5x1x1x2xf32>, tensor<1x1x2xf32>
  %yy, %hh = graph.rnn %x, %w, %r {hidden_size = 2 : i64, direction = "forward"} : tensor<5x1x3xf32>, tensor<1x2x3xf32>, tensor<1x2x2xf32> -> tensor<5x1x1x2xf32>, tensor<1x1x2xf32>
  %c = arith.constant 1.0 : f32
  func.return %h : tensor<1x1x2xf32>
}
