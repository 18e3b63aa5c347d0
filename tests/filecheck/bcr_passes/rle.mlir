// RUN: cd %S && grimc-opt %s -p bcr-rle | filecheck %s
// RUN: cd %S && sed 's/name = "host"/name = "host-avx512"/' %s | grimc-opt -p bcr-rle | filecheck %s --check-prefix=WIDE

// bcr-rle writes an explicit register tile into each BCR weight's schedule:
// rle on, `rows` output rows per register group (sharing every input load),
// `tile` output pixels (vector width x vectors per row), unroll and order;
// fields it does not own (reorder, threads) are kept. The register file and
// vector width are those of the module's #sched.target.

builtin.module attributes {graph.weight_store = "Inputs/reorder.npz", sched.target = #sched.target<name = "host">} {
  // A 1x1 conv over 8x8 pixels: AVX2 (16 registers, 8 floats) holds 4 rows x
  // 2 vectors of accumulators; AVX-512 (32 registers, 16 floats) 4 rows x 4
  // vectors, all 64 pixels in one tile (fewer loads per FMA than 8 x 2).
  // CHECK-LABEL: func.func @conv
  // CHECK-NEXT:  bcr.conv2d %x weights("ordered", #bcr.encoding<matrix = [32, 64], groups = 1, block = [8, 16], keep = [8, 4], balanced, density = 0.25, schedule = {rle, rows = 4, tile = 16, unroll = 2, threads = 3, order = stripe}>)
  // WIDE-LABEL:  func.func @conv
  // WIDE-NEXT:   bcr.conv2d %x weights("ordered", #bcr.encoding<{{.*}}schedule = {rle, rows = 4, tile = 64, unroll = 2, threads = 3, order = stripe}>)
  func.func @conv(%x: tensor<1x64x8x8xf32>) -> tensor<1x32x8x8xf32> {
    %y = bcr.conv2d %x weights("ordered", #bcr.encoding<matrix = [32, 64], block = [8, 16], keep = [8, 4], balanced, density = 0.25, schedule = {threads = 3}>) {kernel_shape = array<i64: 1, 1>, strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x64x8x8xf32> -> tensor<1x32x8x8xf32>
    func.return %y : tensor<1x32x8x8xf32>
  }

  // A matmul with 4 batch rows: the tile is all 4 of them.
  // CHECK-LABEL: func.func @matmul
  // CHECK-NEXT:  bcr.matmul %x weights("shuffled", #bcr.encoding<{{.*}}schedule = {reorder, rle, rows = 4, tile = 4, unroll = 2, threads = 1, order = stripe}>)
  func.func @matmul(%x: tensor<4x64xf32>) -> tensor<4x32xf32> {
    %y = bcr.matmul %x weights("shuffled", #bcr.encoding<matrix = [32, 64], groups = 1, block = [8, 16], keep = [8, 12], density = 0.6289, schedule = {reorder}>) : tensor<4x64xf32> -> tensor<4x32xf32>
    func.return %y : tensor<4x32xf32>
  }

  // A 2x2 conv whose 16x96x96 input (576 KiB) outgrows L2 runs spatially.
  // CHECK-LABEL: func.func @big_conv
  // CHECK-NEXT:  bcr.conv2d %x weights("ordered", #bcr.encoding<{{.*}}schedule = {rle, rows = 4, tile = 24, unroll = 2, threads = 1, order = spatial}>)
  func.func @big_conv(%x: tensor<1x16x96x96xf32>) -> tensor<1x32x95x95xf32> {
    %y = bcr.conv2d %x weights("ordered", #bcr.encoding<matrix = [32, 64], block = [8, 16], keep = [8, 4], balanced, density = 0.25>) {kernel_shape = array<i64: 2, 2>, strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x16x96x96xf32> -> tensor<1x32x95x95xf32>
    func.return %y : tensor<1x32x95x95xf32>
  }
}
