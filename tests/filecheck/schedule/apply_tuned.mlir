// RUN: cd %S && grimc-opt %s -p 'schedule-apply-tuned{db="%t.absent.sqlite" threads=2}' | filecheck %s
// RUN: cd %S && test ! -e %t.absent.sqlite

// schedule-apply-tuned only replaces a schedule with a current record of the
// tuning database (tests/tune: a record's schedule reaches --emit=ir); with no
// database file every schedule stays as it is, and no file is created.

// CHECK: sched = #sched.spmm<rows = 2, nv = 1, unroll = 3, order = spatial, tblock = 5, pf = 7, threads = 2, split = tiles>

builtin.module attributes {graph.weight_store = "../bcr_passes/Inputs/reorder.npz", sched.target = #sched.target<name = "host">} {
  func.func @main(%x: tensor<1x64x8x8xf32>) -> tensor<1x32x8x8xf32> {
    %y = bcr.conv2d %x weights("ordered", #bcr.encoding<matrix = [32, 64], block = [8, 16], keep = [8, 4], balanced, density = 0.25, schedule = {threads = 3}>) {sched = #sched.spmm<rows = 2, nv = 1, unroll = 3, order = spatial, tblock = 5, pf = 7, threads = 2, split = tiles>, kernel_shape = array<i64: 1, 1>, strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x64x8x8xf32> -> tensor<1x32x8x8xf32>
    func.return %y : tensor<1x32x8x8xf32>
  }
}
