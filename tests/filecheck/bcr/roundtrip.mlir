// RUN: grimc-opt %s | grimc-opt | filecheck %s
// RUN: grimc-opt %s --print-op-generic | grimc-opt | filecheck %s
// RUN: xdsl-opt %s | filecheck %s

// Every bcr op and attribute round-trips through its custom syntax and the
// generic form: defaults (groups, schedule) may be omitted on input, keys of
// the records may come in any order, and print in canonical order.

builtin.module {
  // CHECK-LABEL: func.func @conv
  func.func @conv(%x: tensor<1x16x8x8xf32>) -> (tensor<1x8x8x8xf32>, tensor<1x8x4x4xf32>) {
    %b = graph.weight "conv_b" : tensor<8xf32>
    // CHECK:      %y = bcr.conv2d %x weights("conv", #bcr.encoding<matrix = [8, 144], groups = 1, block = [8, 16], keep = [6, 2], balanced, density = 0.09375, schedule = {reorder, threads = 4}>) bias(%b : tensor<8xf32>) {kernel_shape = array<i64: 3, 3>, strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64, act = #graph.act<relu>} : tensor<1x16x8x8xf32> -> tensor<1x8x8x8xf32>
    %y = bcr.conv2d %x weights("conv", #bcr.encoding<block = [8, 16], matrix = [8, 144], keep = [6, 2], density = 0.09375, balanced, schedule = {threads = 4, reorder}>) bias(%b : tensor<8xf32>) {kernel_shape = array<i64: 3, 3>, strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64, act = #graph.act<relu>} : tensor<1x16x8x8xf32> -> tensor<1x8x8x8xf32>
    // Grouped and strided, with a residual and a partial edge block (72 = 4*16 + 8).
    // CHECK-NEXT: %z = graph.weight "zeros" : tensor<1x8x4x4xf32>
    // CHECK-NEXT: %r = bcr.conv2d %x weights("grouped", #bcr.encoding<matrix = [4, 72], groups = 2, block = [4, 16], keep = [3, 5], density = 0.2>) residual(%z : tensor<1x8x4x4xf32>) {kernel_shape = array<i64: 3, 3>, strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 2 : i64} : tensor<1x16x8x8xf32> -> tensor<1x8x4x4xf32>
    %z = graph.weight "zeros" : tensor<1x8x4x4xf32>
    %r = bcr.conv2d %x weights("grouped", #bcr.encoding<matrix = [4, 72], groups = 2, block = [4, 16], keep = [3, 5], density = 0.2>) residual(%z : tensor<1x8x4x4xf32>) {kernel_shape = array<i64: 3, 3>, strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 2 : i64} : tensor<1x16x8x8xf32> -> tensor<1x8x4x4xf32>
    func.return %y, %r : tensor<1x8x8x8xf32>, tensor<1x8x4x4xf32>
  }

  // CHECK-LABEL: func.func @matmul
  func.func @matmul(%a: tensor<2x512xf32>, %s: tensor<3x4x64xf32>) -> (tensor<2x10xf32>, tensor<3x4x32xf32>) {
    %b = graph.weight "fc_b" : tensor<10xf32>
    %res = graph.weight "fc_res" : tensor<2x10xf32>
    // CHECK:      %y = bcr.matmul %a weights("fc", #bcr.encoding<matrix = [10, 512], groups = 1, block = [4, 16], keep = [2, 4], density = 0.1>) bias(%b : tensor<10xf32>) residual(%res : tensor<2x10xf32>) {act = #graph.act<clip, 0.0, 6.0>} : tensor<2x512xf32> -> tensor<2x10xf32>
    %y = bcr.matmul %a weights("fc", #bcr.encoding<matrix = [10, 512], block = [4, 16], keep = [2, 4], density = 0.1>) bias(%b : tensor<10xf32>) residual(%res : tensor<2x10xf32>) {act = #graph.act<clip, 0.0, 6.0>} : tensor<2x512xf32> -> tensor<2x10xf32>
    // Leading dims are batch rows; an all-zero weight keeps nothing.
    // CHECK-NEXT: %t = bcr.matmul %s weights("proj", #bcr.encoding<matrix = [32, 64], groups = 1, block = [32, 64], keep = [0, 0], balanced, density = 0.0>) : tensor<3x4x64xf32> -> tensor<3x4x32xf32>
    %t = bcr.matmul %s weights("proj", #bcr.encoding<matrix = [32, 64], groups = 1, block = [32, 64], keep = [0, 0], balanced, density = 0.0>) : tensor<3x4x64xf32> -> tensor<3x4x32xf32>
    func.return %y, %t : tensor<2x10xf32>, tensor<3x4x32xf32>
  }

  // CHECK-LABEL: func.func @recurrent
  func.func @recurrent(%seq: tensor<5x2x16xf32>) -> (tensor<5x1x2x32xf32>, tensor<5x2x2x8xf32>, tensor<5x1x2x4xf32>) {
    // CHECK:      %gy, %gyh = bcr.gru %seq w("gru_w", #bcr.encoding<matrix = [96, 16], groups = 1, block = [8, 8], keep = [4, 4], balanced, density = 0.25>) r("gru_r", #bcr.encoding<matrix = [96, 32], groups = 1, block = [16, 8], keep = [8, 2], density = 0.125, schedule = {reorder, threads = 1}>) {hidden_size = 32 : i64, direction = "forward", linear_before_reset = 1 : i64} : tensor<5x2x16xf32> -> tensor<5x1x2x32xf32>, tensor<1x2x32xf32>
    %gy, %gyh = bcr.gru %seq w("gru_w", #bcr.encoding<matrix = [96, 16], block = [8, 8], keep = [4, 4], balanced, density = 0.25>) r("gru_r", #bcr.encoding<matrix = [96, 32], block = [16, 8], keep = [8, 2], density = 0.125, schedule = {reorder}>) {hidden_size = 32 : i64, direction = "forward", linear_before_reset = 1 : i64} : tensor<5x2x16xf32> -> tensor<5x1x2x32xf32>, tensor<1x2x32xf32>
    %lb = graph.weight "lstm_b" : tensor<2x64xf32>
    %lh = graph.weight "lstm_h0" : tensor<2x2x8xf32>
    %lp = graph.weight "lstm_p" : tensor<2x24xf32>
    // CHECK-NEXT: %lb = graph.weight "lstm_b" : tensor<2x64xf32>
    // CHECK-NEXT: %lh = graph.weight "lstm_h0" : tensor<2x2x8xf32>
    // CHECK-NEXT: %lp = graph.weight "lstm_p" : tensor<2x24xf32>
    // CHECK-NEXT: %ly, %lyh, %lyc = bcr.lstm %seq w("lstm_w", #bcr.encoding<matrix = [32, 16], groups = 2, block = [4, 4], keep = [2, 2], balanced, density = 0.25>) r("lstm_r", #bcr.encoding<matrix = [32, 8], groups = 2, block = [4, 4], keep = [2, 2], balanced, density = 0.25>) b(%lb : tensor<2x64xf32>) initial_h(%lh : tensor<2x2x8xf32>) initial_c(%lh : tensor<2x2x8xf32>) p(%lp : tensor<2x24xf32>) {hidden_size = 8 : i64, direction = "bidirectional", input_forget = 0 : i64} : tensor<5x2x16xf32> -> tensor<5x2x2x8xf32>, tensor<2x2x8xf32>, tensor<2x2x8xf32>
    %ly, %lyh, %lyc = bcr.lstm %seq w("lstm_w", #bcr.encoding<matrix = [32, 16], groups = 2, block = [4, 4], keep = [2, 2], balanced, density = 0.25>) r("lstm_r", #bcr.encoding<matrix = [32, 8], groups = 2, block = [4, 4], keep = [2, 2], balanced, density = 0.25>) b(%lb : tensor<2x64xf32>) initial_h(%lh : tensor<2x2x8xf32>) initial_c(%lh : tensor<2x2x8xf32>) p(%lp : tensor<2x24xf32>) {hidden_size = 8 : i64, direction = "bidirectional", input_forget = 0 : i64} : tensor<5x2x16xf32> -> tensor<5x2x2x8xf32>, tensor<2x2x8xf32>, tensor<2x2x8xf32>
    // CHECK-NEXT: %ry, %ryh = bcr.rnn %seq w("rnn_w", #bcr.encoding<matrix = [4, 16], groups = 1, block = [1, 1], keep = [1, 1], density = 0.5>) r("rnn_r", #bcr.encoding<matrix = [4, 4], groups = 1, block = [4, 4], keep = [4, 4], balanced, density = 1.0>) {hidden_size = 4 : i64, direction = "reverse", clip = 3.000000e+00 : f32} : tensor<5x2x16xf32> -> tensor<5x1x2x4xf32>, tensor<1x2x4xf32>
    %ry, %ryh = bcr.rnn %seq w("rnn_w", #bcr.encoding<matrix = [4, 16], block = [1, 1], keep = [1, 1], density = 0.5>) r("rnn_r", #bcr.encoding<matrix = [4, 4], block = [4, 4], keep = [4, 4], balanced, density = 1>) {hidden_size = 4 : i64, direction = "reverse", clip = 3.0 : f32} : tensor<5x2x16xf32> -> tensor<5x1x2x4xf32>, tensor<1x2x4xf32>
    func.return %gy, %ly, %ry : tensor<5x1x2x32xf32>, tensor<5x2x2x8xf32>, tensor<5x1x2x4xf32>
  }

  // The schedule is an attribute of its own too.
  // CHECK: "test.op"() {schedule = #bcr.schedule<reorder, threads = 2>} : () -> ()
  "test.op"() {schedule = #bcr.schedule<threads = 2, reorder>} : () -> ()
}
