// RUN: grimc-opt %s -p graph-fuse-elementwise | filecheck %s
// RUN: xdsl-opt %s -p graph-fuse-elementwise | filecheck %s

// graph-fuse-elementwise composes consecutive clamps (relu, clip) into one.

// A chain of relus is one relu.
// CHECK-LABEL: func.func @relu_chain
// CHECK-NEXT:  %[[R:.*]] = graph.relu %x : tensor<2x8xf32> -> tensor<2x8xf32>
// CHECK-NEXT:  func.return %[[R]]
func.func @relu_chain(%x: tensor<2x8xf32>) -> tensor<2x8xf32> {
  %0 = graph.relu %x : tensor<2x8xf32> -> tensor<2x8xf32>
  %1 = graph.relu %0 : tensor<2x8xf32> -> tensor<2x8xf32>
  %2 = graph.relu %1 : tensor<2x8xf32> -> tensor<2x8xf32>
  %3 = graph.relu %2 : tensor<2x8xf32> -> tensor<2x8xf32>
  func.return %3 : tensor<2x8xf32>
}

// relu then clip(-1, 6) is clip(0, 6); clip(-3, 2) then clip(1, 5) is clip(1, 2);
// clip(-inf, -2) then relu is clip(0, 0).
// CHECK-LABEL: func.func @mixed
// CHECK-NEXT:  %[[A:.*]] = graph.clip %x {min = 0.000000e+00 : f32, max = 6.000000e+00 : f32}
// CHECK-NEXT:  %[[B:.*]] = graph.clip %x {min = 1.000000e+00 : f32, max = 2.000000e+00 : f32}
// CHECK-NEXT:  %[[C:.*]] = graph.clip %x {min = 0.000000e+00 : f32, max = 0.000000e+00 : f32}
// CHECK-NEXT:  func.return %[[A]], %[[B]], %[[C]]
func.func @mixed(%x: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) {
  %r = graph.relu %x : tensor<4xf32> -> tensor<4xf32>
  %a = graph.clip %r {min = -1.0 : f32, max = 6.0 : f32} : tensor<4xf32> -> tensor<4xf32>
  %c = graph.clip %x {min = -3.0 : f32, max = 2.0 : f32} : tensor<4xf32> -> tensor<4xf32>
  %b = graph.clip %c {min = 1.0 : f32, max = 5.0 : f32} : tensor<4xf32> -> tensor<4xf32>
  %n = graph.clip %x {min = 0xFF800000 : f32, max = -2.0 : f32} : tensor<4xf32> -> tensor<4xf32>
  %z = graph.relu %n : tensor<4xf32> -> tensor<4xf32>
  func.return %a, %b, %z : tensor<4xf32>, tensor<4xf32>, tensor<4xf32>
}

// A clamp after a relu/clip epilogue composes into the epilogue.
// CHECK-LABEL: func.func @into_epilogue
// CHECK-NEXT:  %[[A:.*]] = graph.add %a, %a {act = #graph.act<clip, 0.0, 6.0>}
// CHECK-NEXT:  func.return %[[A]]
func.func @into_epilogue(%a: tensor<2x5xf32>) -> tensor<2x5xf32> {
  %s = graph.add %a, %a {act = #graph.act<relu>} : tensor<2x5xf32>, tensor<2x5xf32> -> tensor<2x5xf32>
  %c = graph.clip %s {min = -1.0 : f32, max = 6.0 : f32} : tensor<2x5xf32> -> tensor<2x5xf32>
  func.return %c : tensor<2x5xf32>
}

// Not composed: a clamp whose result has another use, a non-clamp between
// clamps, a sigmoid epilogue, and an epilogue whose composed clip, [1, inf),
// has an infinite bound (not an `act` parameter).
// CHECK-LABEL: func.func @not_fused
// CHECK-NEXT:  %[[R:.*]] = graph.relu %x
// CHECK-NEXT:  %[[R2:.*]] = graph.relu %[[R]]
// CHECK-NEXT:  %[[T:.*]] = graph.tanh %x
// CHECK-NEXT:  %[[T2:.*]] = graph.relu %[[T]]
// CHECK-NEXT:  %[[S:.*]] = graph.add %x, %x {act = #graph.act<sigmoid>}
// CHECK-NEXT:  %[[S2:.*]] = graph.relu %[[S]]
// CHECK-NEXT:  %[[M:.*]] = graph.mul %x, %x {act = #graph.act<relu>}
// CHECK-NEXT:  %[[M2:.*]] = graph.clip %[[M]] {min = 1.000000e+00 : f32, max = 0x7f800000 : f32}
// CHECK-NEXT:  func.return %[[R]], %[[R2]], %[[T2]], %[[S2]], %[[M2]]
func.func @not_fused(%x: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) {
  %r = graph.relu %x : tensor<4xf32> -> tensor<4xf32>
  %r2 = graph.relu %r : tensor<4xf32> -> tensor<4xf32>
  %t = graph.tanh %x : tensor<4xf32> -> tensor<4xf32>
  %t2 = graph.relu %t : tensor<4xf32> -> tensor<4xf32>
  %s = graph.add %x, %x {act = #graph.act<sigmoid>} : tensor<4xf32>, tensor<4xf32> -> tensor<4xf32>
  %s2 = graph.relu %s : tensor<4xf32> -> tensor<4xf32>
  %m = graph.mul %x, %x {act = #graph.act<relu>} : tensor<4xf32>, tensor<4xf32> -> tensor<4xf32>
  %m2 = graph.clip %m {min = 1.0 : f32, max = 0x7F800000 : f32} : tensor<4xf32> -> tensor<4xf32>
  func.return %r, %r2, %t2, %s2, %m2 : tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>
}
