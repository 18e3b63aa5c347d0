// RUN: grimc-opt %s -p 'schedule-select{threads=2}' | filecheck %s
// RUN: sed 's/name = "host"/name = "host-avx512"/' %s | grimc-opt -p schedule-select | filecheck %s --check-prefix=WIDE
// RUN: grimc-opt %s -p 'schedule-select{threads=2}' | grimc-opt | filecheck %s

// Dense kernels get their schedules from the same pass and cost model: the
// target's register tile (AVX2: GEMM 6 rows x 2 vectors, conv 4 channels x 3
// pixel vectors; AVX-512: 12 x 2, 8 x 3), a GEMV tile for one row, K chunks
// within L1, blocks within L2, channel vectors for a 7x7 image, Winograd
// F(2x2, 3x3) for a 3x3 stride-1 conv with >= 32 channels (equal blocks of
// whole vectors of tiles; a narrower one stays direct), and the thread
// split (2 threads: columns, pixel ranges, channel blocks or planes; the GRU's
// step is too small to split). Printed schedules parse back.

builtin.module attributes {sched.target = #sched.target<name = "host">} {
  // CHECK-LABEL: func.func @gemm
  // CHECK:       {sched = #sched.gemm<mr = 6, nv = 2, ku = 1, kc = 256, mcb = 21, split = n, ntasks = 2>
  // WIDE-LABEL:  func.func @gemm
  // WIDE:        {sched = #sched.gemm<mr = 12, nv = 2, ku = 1, kc = 256, mcb = 10, split = n, ntasks = 1>
  func.func @gemm(%a: tensor<64x256xf32>) -> tensor<64x128xf32> {
    %b = graph.weight "b" : tensor<256x128xf32>
    %y = graph.gemm %a, %b {alpha = 1.0 : f32, beta = 1.0 : f32, trans_a = 0 : i64, trans_b = 0 : i64} : tensor<64x256xf32>, tensor<256x128xf32> -> tensor<64x128xf32>
    func.return %y : tensor<64x128xf32>
  }
  // CHECK-LABEL: func.func @gemv
  // CHECK:       {sched = #sched.gemm<mr = 1, nv = 4, ku = 2, kc = 4096, mcb = 8, split = n, ntasks = 2>
  // WIDE-LABEL:  func.func @gemv
  // WIDE:        {sched = #sched.gemm<mr = 1, nv = 4, ku = 2, kc = 4096, mcb = 8, split = n, ntasks = 1>
  func.func @gemv(%a: tensor<1x4096xf32>) -> tensor<1x1000xf32> {
    %b = graph.weight "fc" : tensor<4096x1000xf32>
    %y = graph.gemm %a, %b {alpha = 1.0 : f32, beta = 1.0 : f32, trans_a = 0 : i64, trans_b = 0 : i64} : tensor<1x4096xf32>, tensor<4096x1000xf32> -> tensor<1x1000xf32>
    func.return %y : tensor<1x1000xf32>
  }
  // CHECK-LABEL: func.func @conv
  // CHECK:       {sched = #sched.conv<vec = w, mr = 4, nv = 3, kc = 64, tb = 56, order = cob, split = p, ntasks = 2, pf = 0, pfa = 0, pfb = 0>
  // WIDE-LABEL:  func.func @conv
  // WIDE:        {sched = #sched.conv<vec = w, mr = 8, nv = 3, kc = 64, tb = 64, order = cob, split = p, ntasks = 1, pf = 0, pfa = 0, pfb = 0>
  func.func @conv(%x: tensor<1x64x56x56xf32>) -> tensor<1x64x56x56xf32> {
    %w = graph.weight "w" : tensor<64x64x3x3xf32>
    %y = graph.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x64x56x56xf32>, tensor<64x64x3x3xf32> -> tensor<1x64x56x56xf32>
    func.return %y : tensor<1x64x56x56xf32>
  }
  // CHECK-LABEL: func.func @conv_narrow
  // CHECK:       {sched = #sched.conv<vec = p, mr = 4, nv = 3, kc = 144, tb = 408, order = cob, split = p, ntasks = 2, pf = 2, pfa = 64, pfb = 0>
  // WIDE-LABEL:  func.func @conv_narrow
  // WIDE:        {sched = #sched.conv<vec = p, mr = 8, nv = 3, kc = 144, tb = 432, order = cob, split = p, ntasks = 1, pf = 2, pfa = 64, pfb = 0>
  func.func @conv_narrow(%x: tensor<1x16x56x56xf32>) -> tensor<1x16x56x56xf32> {
    %w = graph.weight "wn" : tensor<16x16x3x3xf32>
    %y = graph.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x16x56x56xf32>, tensor<16x16x3x3xf32> -> tensor<1x16x56x56xf32>
    func.return %y : tensor<1x16x56x56xf32>
  }
  // CHECK-LABEL: func.func @small_image
  // CHECK:       {sched = #sched.conv<vec = c, mr = 6, nv = 2, kc = 512, tb = 49, order = cob, split = c, ntasks = 2, pf = 2, pfa = 64, pfb = 0>
  // WIDE-LABEL:  func.func @small_image
  // WIDE:        {sched = #sched.conv<vec = c, mr = 7, nv = 3, kc = 165, tb = 49, order = cob, split = p, ntasks = 1, pf = 2, pfa = 64, pfb = 0>
  func.func @small_image(%x: tensor<1x512x7x7xf32>) -> tensor<1x512x7x7xf32> {
    %w = graph.weight "w7" : tensor<512x512x3x3xf32>
    %y = graph.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : tensor<1x512x7x7xf32>, tensor<512x512x3x3xf32> -> tensor<1x512x7x7xf32>
    func.return %y : tensor<1x512x7x7xf32>
  }
  // CHECK-LABEL: func.func @depthwise
  // CHECK:       {sched = #sched.depthwise<dv = 4, ntasks = 2>
  // WIDE-LABEL:  func.func @depthwise
  // WIDE:        {sched = #sched.depthwise<dv = 4, ntasks = 1>
  func.func @depthwise(%x: tensor<1x32x28x28xf32>) -> tensor<1x32x28x28xf32> {
    %w = graph.weight "dw" : tensor<32x1x3x3xf32>
    %y = graph.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 32 : i64} : tensor<1x32x28x28xf32>, tensor<32x1x3x3xf32> -> tensor<1x32x28x28xf32>
    func.return %y : tensor<1x32x28x28xf32>
  }
  // CHECK-LABEL: func.func @gru
  // CHECK:       {sched = #sched.cell<nvg = 2, bb = 1, ntasks = 1>, sched.proj = #sched.gemm<mr = 6, nv = 2, ku = 1, kc = 13, mcb = 420, split = n, ntasks = 1>
  // WIDE-LABEL:  func.func @gru
  // WIDE:        {sched = #sched.cell<nvg = 2, bb = 1, ntasks = 1>, sched.proj = #sched.gemm<mr = 12, nv = 2, ku = 1, kc = 13, mcb = 210, split = n, ntasks = 1>
  func.func @gru(%x: tensor<3x1x13xf32>) -> tensor<3x1x1x24xf32> {
    %w = graph.weight "gw" : tensor<1x72x13xf32>
    %r = graph.weight "gr" : tensor<1x72x24xf32>
    %y, %yh = graph.gru %x, %w, %r {hidden_size = 24 : i64, direction = "forward", linear_before_reset = 1 : i64} : tensor<3x1x13xf32>, tensor<1x72x13xf32>, tensor<1x72x24xf32> -> tensor<3x1x1x24xf32>, tensor<1x1x24xf32>
    func.return %y : tensor<3x1x1x24xf32>
  }
}
