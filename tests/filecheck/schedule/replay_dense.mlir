// RUN: cd %S && grimc %s --passes= -o %t.c 2>/dev/null && filecheck %s < %t.c
// RUN: cd %S && grimc %s -o %t.default.c 2>/dev/null && filecheck %s --check-prefix=CHOSEN < %t.default.c

// A dense GEMM's #sched.gemm edited by hand (2-row tiles of one vector, ku 2,
// K chunks of 2, 2 tasks over row blocks) is what the kernel is generated with;
// the full pipeline keeps a schedule the IR already has, too.

// CHECK:  Tile 2x8 (ku 2), kc 2, 3 row blocks per L2 block,
// CHECK-NEXT: B packed at compile time, 2 task(s) over m.
// CHOSEN: Tile 2x8 (ku 2), kc 2, 3 row blocks per L2 block,

builtin.module attributes {graph.weight_store = "../graph/Inputs/bn.npz", sched.target = #sched.target<name = "host">} {
  func.func @main(%x: tensor<7x5xf32>) -> tensor<7x6xf32> {
    %w = graph.weight "fc_wt" : tensor<5x6xf32>
    %y = graph.gemm %x, %w {sched = #sched.gemm<mr = 2, nv = 1, ku = 2, kc = 2, mcb = 3, split = m, ntasks = 2>, alpha = 1.0 : f32, beta = 1.0 : f32, trans_a = 0 : i64, trans_b = 0 : i64} : tensor<7x5xf32>, tensor<5x6xf32> -> tensor<7x6xf32>
    func.return %y : tensor<7x6xf32>
  }
}
