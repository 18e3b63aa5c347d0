// RUN: grimc-opt %s -p 'schedule-select{threads=2}' | filecheck %s
// RUN: grimc-opt %s -p schedule-select | filecheck %s --check-prefix=ONE
// RUN: grimc-opt %s -p 'schedule-select{threads=2}' | grimc-opt | filecheck %s
// RUN: grimc-opt %s -p 'schedule-select{threads=2}' | sed 's/threads = 2, over = elems/threads = 3, over = elems/' > %t.mlir
// RUN: grimc %t.mlir --passes= -o %t.c 2>/dev/null && filecheck %s --check-prefix=C < %t.c
// RUN: sed 's/over = elems, align = 16/over = planes, align = 1/' %t.mlir > %t.over.mlir
// RUN: not grimc %t.over.mlir --passes= -o %t.over.c 2>&1 | filecheck %s --check-prefix=OVER
// RUN: sed 's/align = 16/align = 12/' %t.mlir > %t.align.mlir
// RUN: not grimc-opt %t.align.mlir 2>&1 | filecheck %s --check-prefix=ALIGN

// Memory-bound sweeps (element-wise, pooling, normalization) get a #sched.split
// from schedule-select: a flat array is cut into chunks aligned to 16 floats,
// a broadcast add splits its rows, pools and batch norm their planes, softmax
// its rows; small sweeps (the 16k-element softmax) stay one task. The printed
// split parses back, a hand-edited one is what the C is generated with, one
// that does not fit its kernel or does not verify is one clear error.

// CHECK: graph.relu %x {sched = #sched.split<threads = 2, over = elems, align = 16>}
// CHECK: graph.add %r, %b {sched = #sched.split<threads = 2, over = rows, align = 1>}
// CHECK: graph.batch_norm {{.*}}{sched = #sched.split<threads = 2, over = planes, align = 1>
// CHECK: graph.max_pool %n {sched = #sched.split<threads = 2, over = planes, align = 1>
// CHECK: graph.softmax %p {sched = #sched.split<threads = 1, over = rows, align = 1>
// CHECK: graph.global_avg_pool %n {sched = #sched.split<threads = 2, over = planes, align = 1>}
// ONE:   graph.relu %x {sched = #sched.split<threads = 1, over = elems, align = 16>}
// ONE:   graph.add %r, %b {sched = #sched.split<threads = 1, over = rows, align = 1>}
// ONE:   graph.global_avg_pool %n {sched = #sched.split<threads = 1, over = planes, align = 1>}
// C:     relu(x) over 65536 elements, 3 task(s)
// OVER:  graph.relu: #sched.split over = planes: its kernel splits elems
// ALIGN: sched.split: align = 12 must be a power of two

builtin.module attributes {sched.target = #sched.target<name = "host">} {
  func.func @main(%x: tensor<1x64x32x32xf32>, %b: tensor<1x64x1x1xf32>, %s: tensor<64xf32>) -> (tensor<1x64x16x16xf32>, tensor<1x64x1x1xf32>) {
    %r = graph.relu %x : tensor<1x64x32x32xf32> -> tensor<1x64x32x32xf32>
    %a = graph.add %r, %b : tensor<1x64x32x32xf32>, tensor<1x64x1x1xf32> -> tensor<1x64x32x32xf32>
    %n = graph.batch_norm %a, %s, %s, %s, %s {epsilon = 1.000000e-05 : f32} : tensor<1x64x32x32xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32> -> tensor<1x64x32x32xf32>
    %p = graph.max_pool %n {kernel_shape = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, ceil_mode = 0 : i64, dilations = array<i64: 1, 1>} : tensor<1x64x32x32xf32> -> tensor<1x64x16x16xf32>
    %y = graph.softmax %p {axis = 1 : i64} : tensor<1x64x16x16xf32> -> tensor<1x64x16x16xf32>
    %z = graph.global_avg_pool %n : tensor<1x64x32x32xf32> -> tensor<1x64x1x1xf32>
    func.return %y, %z : tensor<1x64x16x16xf32>, tensor<1x64x1x1xf32>
  }
}
