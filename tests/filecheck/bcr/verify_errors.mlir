// RUN: grimc-opt %s --split-input-file --verify-diagnostics | filecheck %s

// Each bcr op verifier names the op, the operand or weight, and what it expected.

func.func @conv_matrix(%x: tensor<1x16x8x8xf32>) -> tensor<1x8x8x8xf32> {
  %y = bcr.conv2d %x weights("conv", #bcr.encoding<matrix = [8, 16], block = [8, 16], keep = [8, 16], balanced, density = 1.0>) {kernel_shape = array<i64: 3, 3>, strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x16x8x8xf32> -> tensor<1x8x8x8xf32>
  func.return %y : tensor<1x8x8x8xf32>
}
// CHECK: bcr.conv2d: weights encoding holds 1 x [8, 16], expected 1 x [8, 144] (groups x [rows, cols])

// -----

func.func @conv_groups(%x: tensor<1x16x8x8xf32>) -> tensor<1x8x8x8xf32> {
  %y = bcr.conv2d %x weights("conv", #bcr.encoding<matrix = [4, 72], block = [4, 8], keep = [4, 8], density = 1.0>) {kernel_shape = array<i64: 3, 3>, strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 2 : i64} : tensor<1x16x8x8xf32> -> tensor<1x8x8x8xf32>
  func.return %y : tensor<1x8x8x8xf32>
}
// CHECK: bcr.conv2d: weights encoding holds 1 x [4, 72], expected 2 x [4, 72] (groups x [rows, cols])

// -----

func.func @conv_group_divides(%x: tensor<1x16x8x8xf32>) -> tensor<1x9x8x8xf32> {
  %y = bcr.conv2d %x weights("conv", #bcr.encoding<matrix = [3, 72], block = [4, 8], keep = [3, 8], density = 1.0>) {kernel_shape = array<i64: 3, 3>, strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 2 : i64} : tensor<1x16x8x8xf32> -> tensor<1x9x8x8xf32>
  func.return %y : tensor<1x9x8x8xf32>
}
// CHECK: bcr.conv2d: channels 16 -> 9 not divisible by group 2

// -----

func.func @conv_window(%x: tensor<1x16x8x8xf32>) -> tensor<1x8x8x8xf32> {
  %y = bcr.conv2d %x weights("conv", #bcr.encoding<matrix = [8, 144], block = [8, 16], keep = [8, 16], density = 1.0>) {kernel_shape = array<i64: 3, 3>, strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x16x8x8xf32> -> tensor<1x8x8x8xf32>
  func.return %y : tensor<1x8x8x8xf32>
}
// CHECK: bcr.conv2d: spatial dim 0 is 8, expected 6

// -----

func.func @conv_bias(%x: tensor<1x16x8x8xf32>, %b: tensor<16xf32>) -> tensor<1x8x8x8xf32> {
  %y = bcr.conv2d %x weights("conv", #bcr.encoding<matrix = [8, 144], block = [8, 16], keep = [8, 16], density = 1.0>) bias(%b : tensor<16xf32>) {kernel_shape = array<i64: 3, 3>, strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x16x8x8xf32> -> tensor<1x8x8x8xf32>
  func.return %y : tensor<1x8x8x8xf32>
}
// CHECK: bcr.conv2d: bias must be [8]

// -----

func.func @conv_kernel(%x: tensor<1x16x8x8xf32>) -> tensor<1x8x8x8xf32> {
  %y = bcr.conv2d %x weights("conv", #bcr.encoding<matrix = [8, 144], block = [8, 16], keep = [8, 16], density = 1.0>) {kernel_shape = array<i64: 9>, strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x16x8x8xf32> -> tensor<1x8x8x8xf32>
  func.return %y : tensor<1x8x8x8xf32>
}
// CHECK: bcr.conv2d: kernel_shape needs 2 values

// -----

func.func @matmul_key(%a: tensor<2x512xf32>) -> tensor<2x10xf32> {
  %y = bcr.matmul %a weights("fc.w", #bcr.encoding<matrix = [10, 512], block = [4, 16], keep = [2, 4], density = 0.1>) : tensor<2x512xf32> -> tensor<2x10xf32>
  func.return %y : tensor<2x10xf32>
}
// CHECK: bcr.matmul: weights key 'fc.w' is not a sanitized identifier

// -----

func.func @matmul_rows(%a: tensor<2x512xf32>) -> tensor<3x10xf32> {
  %y = bcr.matmul %a weights("fc", #bcr.encoding<matrix = [10, 512], block = [4, 16], keep = [2, 4], density = 0.1>) : tensor<2x512xf32> -> tensor<3x10xf32>
  func.return %y : tensor<3x10xf32>
}
// CHECK: bcr.matmul: result must be [2] + [M]

// -----

func.func @matmul_residual(%a: tensor<2x512xf32>, %r: tensor<1x10xf32>) -> tensor<2x10xf32> {
  %y = bcr.matmul %a weights("fc", #bcr.encoding<matrix = [10, 512], block = [4, 16], keep = [2, 4], density = 0.1>) residual(%r : tensor<1x10xf32>) : tensor<2x512xf32> -> tensor<2x10xf32>
  func.return %y : tensor<2x10xf32>
}
// CHECK: bcr.matmul: residual must match result

// -----

func.func @matmul_f32(%a: tensor<2x512xi32>) -> tensor<2x10xi32> {
  %y = bcr.matmul %a weights("fc", #bcr.encoding<matrix = [10, 512], block = [4, 16], keep = [2, 4], density = 0.1>) : tensor<2x512xi32> -> tensor<2x10xi32>
  func.return %y : tensor<2x10xi32>
}
// CHECK: bcr.matmul: expected f32 tensors, got tensor<2x512xi32>

// -----

func.func @gru_w(%seq: tensor<5x2x16xf32>) -> tensor<5x1x2x32xf32> {
  %y, %yh = bcr.gru %seq w("gru_w", #bcr.encoding<matrix = [96, 32], block = [8, 8], keep = [4, 4], density = 0.25>) r("gru_r", #bcr.encoding<matrix = [96, 32], block = [8, 8], keep = [4, 4], density = 0.25>) {hidden_size = 32 : i64, direction = "forward", linear_before_reset = 0 : i64} : tensor<5x2x16xf32> -> tensor<5x1x2x32xf32>, tensor<1x2x32xf32>
  func.return %y : tensor<5x1x2x32xf32>
}
// CHECK: bcr.gru: W encoding holds 1 x [96, 32], expected 1 x [96, 16] (groups x [rows, cols])

// -----

func.func @lstm_directions(%seq: tensor<5x2x16xf32>) -> tensor<5x2x2x8xf32> {
  %y, %yh, %yc = bcr.lstm %seq w("lstm_w", #bcr.encoding<matrix = [32, 16], groups = 2, block = [4, 4], keep = [2, 2], density = 0.25>) r("lstm_r", #bcr.encoding<matrix = [32, 8], block = [4, 4], keep = [2, 2], density = 0.25>) {hidden_size = 8 : i64, direction = "bidirectional", input_forget = 0 : i64} : tensor<5x2x16xf32> -> tensor<5x2x2x8xf32>, tensor<2x2x8xf32>, tensor<2x2x8xf32>
  func.return %y : tensor<5x2x2x8xf32>
}
// CHECK: bcr.lstm: R encoding holds 1 x [32, 8], expected 2 x [32, 8] (groups x [rows, cols])

// -----

func.func @lstm_cell_state(%seq: tensor<5x2x16xf32>) -> tensor<5x1x2x8xf32> {
  %y, %yh, %yc = bcr.lstm %seq w("lstm_w", #bcr.encoding<matrix = [32, 16], block = [4, 4], keep = [2, 2], density = 0.25>) r("lstm_r", #bcr.encoding<matrix = [32, 8], block = [4, 4], keep = [2, 2], density = 0.25>) {hidden_size = 8 : i64, direction = "forward", input_forget = 0 : i64} : tensor<5x2x16xf32> -> tensor<5x1x2x8xf32>, tensor<1x2x8xf32>, tensor<1x2x4xf32>
  func.return %y : tensor<5x1x2x8xf32>
}
// CHECK: bcr.lstm: Y_c must be [1, 2, 8]

// -----

func.func @rnn_direction(%seq: tensor<5x2x16xf32>) -> tensor<5x1x2x4xf32> {
  %y, %yh = bcr.rnn %seq w("rnn_w", #bcr.encoding<matrix = [4, 16], block = [4, 4], keep = [4, 4], density = 1.0>) r("rnn_r", #bcr.encoding<matrix = [4, 4], block = [4, 4], keep = [4, 4], density = 1.0>) {hidden_size = 4 : i64, direction = "sideways"} : tensor<5x2x16xf32> -> tensor<5x1x2x4xf32>, tensor<1x2x4xf32>
  func.return %y : tensor<5x1x2x4xf32>
}
// CHECK: bcr.rnn: direction must be forward, reverse or bidirectional
