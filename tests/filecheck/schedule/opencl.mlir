// RUN: cd %S && grimc-opt %s -p schedule-select | filecheck %s
// RUN: cd %S && grimc-opt %s -p schedule-select | grimc-opt | filecheck %s
// RUN: cd %S && not grimc-opt %s -p 'schedule-select{sparse-format=csr}' 2>&1 | filecheck %s --check-prefix=CSR

// Under #sched.target<name = "opencl"> schedule-select gives every GEMM,
// GEMV and conv kernel, BCR or dense, a #sched.cl_linear: R rows per
// work-item (one floatR weight load per list entry) minimizing list entries
// x (R FMAs + one input load), up to the target's vector width (8); batch
// rows / pixels fastest; the driver picks the work-group. Depthwise (one row
// per group) gets R = 1. A recurrence gets a #sched.cl_cell and a
// #sched.cl_linear projection (opencl_replay.mlir: a hand-edited one).

// CSR: schedule-select: target opencl has no CSR kernels (use bcr or dense)

builtin.module attributes {graph.weight_store = "../bcr_passes/Inputs/reorder.npz", sched.target = #sched.target<name = "opencl">} {
  // CHECK-LABEL: func.func @conv
  // CHECK:       sched = #sched.cl_linear<rows = 8, order = data, lx = 0, ly = 0, lz = 0>
  func.func @conv(%x: tensor<1x64x8x8xf32>) -> tensor<1x32x8x8xf32> {
    %y = bcr.conv2d %x weights("ordered", #bcr.encoding<matrix = [32, 64], block = [8, 16], keep = [8, 4], balanced, density = 0.25, schedule = {threads = 3}>) {kernel_shape = array<i64: 1, 1>, strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x64x8x8xf32> -> tensor<1x32x8x8xf32>
    func.return %y : tensor<1x32x8x8xf32>
  }
  // CHECK-LABEL: func.func @gemm
  // CHECK:       sched = #sched.cl_linear<rows = 8, order = data, lx = 0, ly = 0, lz = 0>
  func.func @gemm(%a: tensor<4x256xf32>) -> tensor<4x100xf32> {
    %b = graph.weight "b" : tensor<256x100xf32>
    %y = graph.gemm %a, %b {alpha = 1.0 : f32, beta = 1.0 : f32, trans_a = 0 : i64, trans_b = 0 : i64} : tensor<4x256xf32>, tensor<256x100xf32> -> tensor<4x100xf32>
    func.return %y : tensor<4x100xf32>
  }
  // CHECK-LABEL: func.func @depthwise
  // CHECK:       sched = #sched.cl_linear<rows = 1, order = data, lx = 0, ly = 0, lz = 0>
  func.func @depthwise(%x: tensor<1x32x28x28xf32>) -> tensor<1x32x28x28xf32> {
    %w = graph.weight "dw" : tensor<32x1x3x3xf32>
    %y = graph.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 32 : i64} : tensor<1x32x28x28xf32>, tensor<32x1x3x3xf32> -> tensor<1x32x28x28xf32>
    func.return %y : tensor<1x32x28x28xf32>
  }
  // CHECK-LABEL: func.func @gru
  // CHECK:       sched = #sched.cl_cell<rows = 8, local = 64>, sched.proj = #sched.cl_linear<rows = 8, order = data, lx = 0, ly = 0, lz = 0>
  func.func @gru(%x: tensor<3x1x13xf32>) -> tensor<3x1x1x24xf32> {
    %w = graph.weight "gw" : tensor<1x72x13xf32>
    %r = graph.weight "gr" : tensor<1x72x24xf32>
    %y, %yh = graph.gru %x, %w, %r {hidden_size = 24 : i64, direction = "forward", linear_before_reset = 1 : i64} : tensor<3x1x13xf32>, tensor<1x72x13xf32>, tensor<1x72x24xf32> -> tensor<3x1x1x24xf32>, tensor<1x1x24xf32>
    func.return %y : tensor<3x1x1x24xf32>
  }
}
