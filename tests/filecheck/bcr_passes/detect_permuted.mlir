// RUN: cd %S && grimc-opt %s -p bcr-detect | filecheck %s
// RUN: cd %S && grimc-opt %s -p 'bcr-detect,bcr-reorder{stats=true},schedule-select' 2>&1 | filecheck %s --check-prefix=CHAIN

// bcr-detect finds BCR structure whose output rows were shuffled after
// pruning (Inputs/permuted.npz, see make_permuted_weights.py): it lays the
// block grid over W[perm] for a row order it recovers from the zeros, and
// stores that order as the BCRC perm. The encoding is what the unshuffled
// weight would give. Unstructured sparsity of the same density stays dense.

// bcr-reorder starts from detect's perm (its "before" is already the
// recovered structure), finds nothing better and keeps it; the encoding's
// schedule records that the rows are permuted, and schedule-select gives each
// op its kernel schedule.
// CHAIN:      bcr-reorder statistics
// CHAIN:      conv_w_bcr   {{.*}} 3976 -> 3976 {{ *}}unchanged
// CHAIN-NEXT: fc_w_bcr     {{.*}} unchanged
// CHAIN:      bcr.conv2d %x weights("conv_w_bcr", #bcr.encoding<{{.*}}schedule = {reorder, threads = 1}>){{.*}}sched = #sched.spmm<rows =
// CHAIN:      bcr.matmul %a weights("fc_w_bcr", #bcr.encoding<{{.*}}schedule = {reorder, threads = 1}>){{.*}}sched = #sched.{{(spmm|gemv)}}<rows =

builtin.module attributes {graph.weight_store = "Inputs/permuted.npz"} {

  // An 8x16 block structure keeping 6 rows x 4 columns per block (rows and
  // columns pruned), output channels shuffled.
  // CHECK-LABEL: func.func @conv_shuffled
  // CHECK-NEXT:  %b = graph.weight "conv_b" : tensor<32xf32>
  // CHECK-NEXT:  %y = bcr.conv2d %x weights("conv_w_bcr", #bcr.encoding<matrix = [32, 144], groups = 1, block = [8, 16], keep = [6, 4], balanced, density = 0.1875>) bias(%b : tensor<32xf32>) {{{.*}}act = #graph.act<relu>}
  func.func @conv_shuffled(%x: tensor<1x16x8x8xf32>) -> tensor<1x32x8x8xf32> {
    %w = graph.weight "conv_w" : tensor<32x16x3x3xf32>
    %b = graph.weight "conv_b" : tensor<32xf32>
    %y = graph.conv %x, %w bias(%b : tensor<32xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64, act = #graph.act<relu>} : tensor<1x16x8x8xf32>, tensor<32x16x3x3xf32> -> tensor<1x32x8x8xf32>
    func.return %y : tensor<1x32x8x8xf32>
  }

  // A 4x16 structure keeping 4 x 3 (18.75% dense), Gemm rows shuffled; random
  // nonzeros at the same 18.75% stay graph.gemm.
  // CHECK-LABEL: func.func @gemm_shuffled
  // CHECK:       %y = bcr.matmul %a weights("fc_w_bcr", #bcr.encoding<matrix = [64, 256], groups = 1, block = [4, 16], keep = [4, 3], balanced, density = 0.1875>)
  // CHECK-NEXT:  %z = graph.gemm %a, %u
  func.func @gemm_shuffled(%a: tensor<2x256xf32>) -> (tensor<2x64xf32>, tensor<2x64xf32>) {
    %w = graph.weight "fc_w" : tensor<64x256xf32>
    %u = graph.weight "random_w" : tensor<64x256xf32>
    %y = graph.gemm %a, %w {alpha = 1.0 : f32, beta = 1.0 : f32, trans_a = 0 : i64, trans_b = 1 : i64} : tensor<2x256xf32>, tensor<64x256xf32> -> tensor<2x64xf32>
    %z = graph.gemm %a, %u {alpha = 1.0 : f32, beta = 1.0 : f32, trans_a = 0 : i64, trans_b = 1 : i64} : tensor<2x256xf32>, tensor<64x256xf32> -> tensor<2x64xf32>
    func.return %y, %z : tensor<2x64xf32>, tensor<2x64xf32>
  }
}
