// RUN: cd %S && grimc-opt %s -p graph-fuse-activations | filecheck %s
// RUN: cd %S && xdsl-opt %s -p graph-fuse-activations | filecheck %s

// graph-fuse-activations forms gelu(x) from the exact GELU as torch.onnx exports
// it, x * (1 + erf(x / sqrt 2)) * 0.5 (the Div arrives as a Mul by 1/sqrt 2),
// so that it fuses into x's producer although x has two users.
// gelu.npz: inv_sqrt2 [1] = 1/sqrt(2), one [1] = 1, half [1] = 0.5, two [1] = 2.

builtin.module attributes {graph.weight_store = "Inputs/gelu.npz"} {

  // The exported chain after a bias add: one add with act gelu remains.
  // CHECK-LABEL: func.func @after_bias_add
  // CHECK:       %[[Y:.*]] = graph.add %a, %b {act = #graph.act<gelu>}
  // CHECK-NOT:   graph.erf
  // CHECK-NOT:   graph.mul
  // CHECK:       func.return %[[Y]]
  func.func @after_bias_add(%a: tensor<2x8xf32>, %b: tensor<8xf32>) -> tensor<2x8xf32> {
    %x = graph.add %a, %b : tensor<2x8xf32>, tensor<8xf32> -> tensor<2x8xf32>
    %s = graph.weight "inv_sqrt2" : tensor<1xf32>
    %one = graph.weight "one" : tensor<1xf32>
    %half = graph.weight "half" : tensor<1xf32>
    %d = graph.mul %x, %s : tensor<2x8xf32>, tensor<1xf32> -> tensor<2x8xf32>
    %e = graph.erf %d : tensor<2x8xf32> -> tensor<2x8xf32>
    %p = graph.add %e, %one : tensor<2x8xf32>, tensor<1xf32> -> tensor<2x8xf32>
    %m = graph.mul %x, %p : tensor<2x8xf32>, tensor<2x8xf32> -> tensor<2x8xf32>
    %y = graph.mul %m, %half : tensor<2x8xf32>, tensor<1xf32> -> tensor<2x8xf32>
    func.return %y : tensor<2x8xf32>
  }

  // Operands of every mul and of the add in the other order, x a block argument:
  // a standalone gelu.
  // CHECK-LABEL: func.func @operands_swapped
  // CHECK:       %[[Y:.*]] = graph.gelu %x {approximate = "none"}
  // CHECK-NOT:   graph.erf
  // CHECK:       func.return %[[Y]]
  func.func @operands_swapped(%x: tensor<2x8xf32>) -> tensor<2x8xf32> {
    %s = graph.weight "inv_sqrt2" : tensor<1xf32>
    %one = graph.weight "one" : tensor<1xf32>
    %half = graph.weight "half" : tensor<1xf32>
    %d = graph.mul %s, %x : tensor<1xf32>, tensor<2x8xf32> -> tensor<2x8xf32>
    %e = graph.erf %d : tensor<2x8xf32> -> tensor<2x8xf32>
    %p = graph.add %one, %e : tensor<1xf32>, tensor<2x8xf32> -> tensor<2x8xf32>
    %m = graph.mul %p, %x : tensor<2x8xf32>, tensor<2x8xf32> -> tensor<2x8xf32>
    %y = graph.mul %half, %m : tensor<1xf32>, tensor<2x8xf32> -> tensor<2x8xf32>
    func.return %y : tensor<2x8xf32>
  }

  // Not a GELU: scaled by 2 instead of 0.5, or the erf's value used elsewhere too.
  // Only the erf fuses (into its mul).
  // CHECK-LABEL: func.func @not_gelu
  // CHECK-NOT:   graph.gelu
  // CHECK:       graph.mul %x, %s {act = #graph.act<erf>}
  // CHECK-NOT:   graph.gelu
  // CHECK:       func.return
  func.func @not_gelu(%x: tensor<2x8xf32>) -> (tensor<2x8xf32>, tensor<2x8xf32>, tensor<2x8xf32>) {
    %s = graph.weight "inv_sqrt2" : tensor<1xf32>
    %one = graph.weight "one" : tensor<1xf32>
    %two = graph.weight "two" : tensor<1xf32>
    %half = graph.weight "half" : tensor<1xf32>
    %d = graph.mul %x, %s : tensor<2x8xf32>, tensor<1xf32> -> tensor<2x8xf32>
    %e = graph.erf %d : tensor<2x8xf32> -> tensor<2x8xf32>
    %p = graph.add %e, %one : tensor<2x8xf32>, tensor<1xf32> -> tensor<2x8xf32>
    %m = graph.mul %x, %p : tensor<2x8xf32>, tensor<2x8xf32> -> tensor<2x8xf32>
    %y = graph.mul %m, %two : tensor<2x8xf32>, tensor<1xf32> -> tensor<2x8xf32>
    %d2 = graph.mul %x, %s : tensor<2x8xf32>, tensor<1xf32> -> tensor<2x8xf32>
    %e2 = graph.erf %d2 : tensor<2x8xf32> -> tensor<2x8xf32>
    %p2 = graph.add %e2, %one : tensor<2x8xf32>, tensor<1xf32> -> tensor<2x8xf32>
    %m2 = graph.mul %x, %p2 : tensor<2x8xf32>, tensor<2x8xf32> -> tensor<2x8xf32>
    %z = graph.mul %m2, %half : tensor<2x8xf32>, tensor<1xf32> -> tensor<2x8xf32>
    func.return %y, %z, %p2 : tensor<2x8xf32>, tensor<2x8xf32>, tensor<2x8xf32>
  }
}
