// RUN: cd %S && grimc-opt %s -p schedule-select | filecheck %s
// RUN: cd %S && sed 's/name = "host"/name = "host-avx512"/' %s | grimc-opt -p schedule-select | filecheck %s --check-prefix=WIDE
// RUN: cd %S && sed 's/{kernel_shape = array<i64: 2, 2>/{sched = #sched.spmm<rows = 1, nv = 1, unroll = 1, order = stripe, tblock = 1, pf = 0, threads = 1, split = groups>, kernel_shape = array<i64: 2, 2>/' %s > %t.mlir
// RUN: cd %S && grimc-opt %t.mlir -p schedule-select | filecheck %s --check-prefix=KEEP
// RUN: cd %S && grimc-opt %t.mlir -p 'schedule-select{overwrite=true}' | filecheck %s --check-prefix=REDO
// RUN: cd %S && grimc-opt %s -p 'schedule-select{sparse-format=csr}' | filecheck %s --check-prefix=CSR
// RUN: cd %S && not grimc-opt %s -p 'schedule-select{threads=0}' 2>&1 | filecheck %s --check-prefix=BAD

// schedule-select writes every BCR op's kernel schedule, from the cost model
// and the module's #sched.target (its register file and vector width): the
// register grouping (`rows` output rows sharing every input load, `nv`
// vectors of pixels or batch rows), unroll, loop order, prefetch and tasks.

// CSR-LABEL:   func.func @conv
// CSR-NEXT:    {sched = #sched.csr<nv = 3, threads = 3>,
// CSR-LABEL:   func.func @matmul
// CSR-NEXT:    {sched = #sched.csr<nv = 1, threads = 1>}
// BAD: grimc-opt: error: schedule-select: threads=0 must be >= 1

builtin.module attributes {graph.weight_store = "../bcr_passes/Inputs/reorder.npz", sched.target = #sched.target<name = "host">} {
  // A 1x1 conv over 8x8 pixels: AVX2 (16 registers, 8 floats) holds 4 rows x
  // 2 vectors of accumulators; AVX-512 (32 registers, 16 floats) 4 rows x 4
  // vectors, all 64 pixels in one tile (fewer loads per FMA than 8 x 2). The 3
  // tasks bcr-reorder balanced the rows for are kept; 1x1: no prefetch.
  // CHECK-LABEL: func.func @conv
  // CHECK-NEXT:  bcr.conv2d %x weights("ordered", #bcr.encoding<matrix = [32, 64], groups = 1, block = [8, 16], keep = [8, 4], balanced, density = 0.25, schedule = {threads = 3}>) {sched = #sched.spmm<rows = 4, nv = 2, unroll = 2, order = stripe, tblock = 64, pf = 0, rle, threads = 3, split = groups>,
  // WIDE-LABEL:  func.func @conv
  // WIDE-NEXT:   bcr.conv2d %x weights("ordered", {{.*}}{sched = #sched.spmm<rows = 4, nv = 4, unroll = 2, order = stripe, tblock = 16, pf = 0, rle, threads = 3, split = groups>,
  func.func @conv(%x: tensor<1x64x8x8xf32>) -> tensor<1x32x8x8xf32> {
    %y = bcr.conv2d %x weights("ordered", #bcr.encoding<matrix = [32, 64], block = [8, 16], keep = [8, 4], balanced, density = 0.25, schedule = {threads = 3}>) {kernel_shape = array<i64: 1, 1>, strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x64x8x8xf32> -> tensor<1x32x8x8xf32>
    func.return %y : tensor<1x32x8x8xf32>
  }

  // A matmul with 4 batch rows runs the GEMV kernel: 4 rows per register group
  // (8 on AVX-512), 3 batch rows sharing each weight load, the longest list (at
  // most 48 of the 64 columns) gathered in one pass.
  // CHECK-LABEL: func.func @matmul
  // CHECK-NEXT:  bcr.matmul %x weights("shuffled", #bcr.encoding<{{.*}}schedule = {reorder, threads = 1}>) {sched = #sched.gemv<rows = 4, nb_tile = 3, sets = 1, gather = 48, rle, threads = 1>}
  // WIDE-LABEL:  func.func @matmul
  // WIDE-NEXT:   {sched = #sched.gemv<rows = 8, nb_tile = 3, sets = 1, gather = 48, rle, threads = 1>}
  func.func @matmul(%x: tensor<4x64xf32>) -> tensor<4x32xf32> {
    %y = bcr.matmul %x weights("shuffled", #bcr.encoding<matrix = [32, 64], groups = 1, block = [8, 16], keep = [8, 12], density = 0.6289, schedule = {reorder}>) : tensor<4x64xf32> -> tensor<4x32xf32>
    func.return %y : tensor<4x32xf32>
  }

  // A 2x2 conv whose 16x96x96 input (576 KiB) outgrows half the L2 runs
  // spatially, in blocks of tiles whose input fits a quarter of it, with
  // prefetch. An op that has a schedule keeps it unless overwrite=true.
  // CHECK-LABEL: func.func @big_conv
  // CHECK-NEXT:  bcr.conv2d %x weights("ordered", {{.*}}{sched = #sched.spmm<rows = 4, nv = 3, unroll = 2, order = spatial, tblock = 166, pf = 24, rle, threads = 1, split = groups>,
  // KEEP-LABEL:  func.func @big_conv
  // KEEP-NEXT:   {sched = #sched.spmm<rows = 1, nv = 1, unroll = 1, order = stripe, tblock = 1, pf = 0, threads = 1, split = groups>,
  // REDO-LABEL:  func.func @big_conv
  // REDO-NEXT:   {sched = #sched.spmm<rows = 4, nv = 3, unroll = 2, order = spatial,
  func.func @big_conv(%x: tensor<1x16x96x96xf32>) -> tensor<1x32x95x95xf32> {
    %y = bcr.conv2d %x weights("ordered", #bcr.encoding<matrix = [32, 64], block = [8, 16], keep = [8, 4], balanced, density = 0.25>) {kernel_shape = array<i64: 2, 2>, strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x16x96x96xf32> -> tensor<1x32x95x95xf32>
    func.return %y : tensor<1x32x95x95xf32>
  }
  // A strided conv first splits its input into phase planes (a kernel of its
  // own): its #sched.split, under the key sched.phase, is chosen here too
  // (64 planes of 16 pixels: too little to split); CSR has no phase split.
  // CHECK-LABEL: func.func @strided
  // CHECK-NEXT:  {sched = #sched.spmm<{{.*}}>, sched.phase = #sched.split<threads = 1, over = planes, align = 1>,
  // CSR-LABEL:   func.func @strided
  // CSR-NOT:     sched.phase
  // CSR:         func.return
  func.func @strided(%x: tensor<1x64x8x8xf32>) -> tensor<1x32x4x4xf32> {
    %y = bcr.conv2d %x weights("ordered", #bcr.encoding<matrix = [32, 64], block = [8, 16], keep = [8, 4], balanced, density = 0.25>) {kernel_shape = array<i64: 1, 1>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x64x8x8xf32> -> tensor<1x32x4x4xf32>
    func.return %y : tensor<1x32x4x4xf32>
  }
}
