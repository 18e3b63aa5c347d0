// RUN: cd %S && grimc-opt %s -p 'bcr-reorder{threads=2 stats=true}' 2>%t.stats | filecheck %s
// RUN: filecheck %s --check-prefix=STATS < %t.stats
// RUN: cd %S && grimc-opt %s -p bcr-reorder,bcr-reorder | filecheck %s --check-prefix=TWICE

// bcr-reorder permutes the rows of each packed BCR matrix so that rows with
// the same kept columns share stripes. "shuffled" is an 8x16 structure (8 rows
// x 4 columns kept per block) whose rows were shuffled before packing, so its
// blocks keep up to 12 columns; reordering recovers the 8x4 blocks and
// repacks the weight under a new prefix with the permutation in `_perm`.
// "ordered" is already in the best order and keeps its packing.

builtin.module attributes {graph.weight_store = "Inputs/reorder.npz"} {
  // CHECK-LABEL: func.func @shuffled
  // CHECK-NEXT:  %y = bcr.matmul %x weights("shuffled_1", #bcr.encoding<matrix = [32, 64], groups = 1, block = [8, 16], keep = [8, 4], balanced, density = 0.25, schedule = {reorder, threads = 2}>) : tensor<4x64xf32> -> tensor<4x32xf32>
  // TWICE-LABEL: func.func @shuffled
  // TWICE-NEXT:  %y = bcr.matmul %x weights("shuffled_1", #bcr.encoding<matrix = [32, 64], groups = 1, block = [8, 16], keep = [8, 4], balanced, density = 0.25, schedule = {reorder, threads = 1}>)
  func.func @shuffled(%x: tensor<4x64xf32>) -> tensor<4x32xf32> {
    %y = bcr.matmul %x weights("shuffled", #bcr.encoding<matrix = [32, 64], groups = 1, block = [8, 16], keep = [8, 12], density = 0.6289>) : tensor<4x64xf32> -> tensor<4x32xf32>
    func.return %y : tensor<4x32xf32>
  }

  // CHECK-LABEL: func.func @ordered
  // CHECK-NEXT:  %y = bcr.matmul %x weights("ordered", #bcr.encoding<matrix = [32, 64], groups = 1, block = [8, 16], keep = [8, 4], balanced, density = 0.25, schedule = {threads = 2}>) : tensor<4x64xf32> -> tensor<4x32xf32>
  func.func @ordered(%x: tensor<4x64xf32>) -> tensor<4x32xf32> {
    %y = bcr.matmul %x weights("ordered", #bcr.encoding<matrix = [32, 64], groups = 1, block = [8, 16], keep = [8, 4], balanced, density = 0.25>) : tensor<4x64xf32> -> tensor<4x32xf32>
    func.return %y : tensor<4x32xf32>
  }
}

// The statistics (stderr): distinct column lists summed over the 4 stripes
// fall to one per stripe, the compact size shrinks, the threads' work evens
// out, and the permutation is kept.
// STATS:      ... bcr-reorder statistics ...
// STATS:      weights grp T stripes col-lists imbalance bytes perm
// STATS-NEXT: shuffled_1 0 2 4 14 -> 4 1.10 -> 1.00 5703 -> 2272 kept
// STATS-NEXT: ordered 0 2 4 4 -> 4 1.00 -> 1.00 2272 -> 2272 unchanged
