// RUN: grimc-opt %s | filecheck %s
// RUN: grimc-opt %s | grimc-opt | filecheck %s
// RUN: sed 's/local = 64, rows = 4/local = 64, rows = 3/' %s | not grimc-opt 2>&1 | filecheck %s --check-prefix=CL

// Every kernel schedule attribute, its knobs given in any order, prints them in
// its declared order (shared fields such as `rows`, declared once, first) and
// parses back unchanged; an OpenCL weight load of a width OpenCL lacks is refused.

// CHECK: a = #sched.spmm<rows = 4, nv = 2, unroll = 2, order = stripe, tblock = 64, pf = 0, rle, threads = 3, split = groups>
// CHECK: b = #sched.gemv<rows = 4, nb_tile = 3, sets = 1, gather = 48, rle, threads = 1>
// CHECK: c = #sched.csr<nv = 3, threads = 3>
// CHECK: d = #sched.gemm<mr = 6, nv = 2, ku = 1, kc = 256, mcb = 21, split = n, ntasks = 2>
// CHECK: e = #sched.conv<vec = p, mr = 4, nv = 3, kc = 288, tb = 216, order = cob, split = p, ntasks = 2, pf = 2, pfa = 64, pfb = 0>
// CHECK: f = #sched.depthwise<dv = 4, ntasks = 2>
// CHECK: g = #sched.cell<nvg = 2, bb = 1, ntasks = 1>
// CHECK: h = #sched.sparse_cell<q = 2, bb = 4, sets = 1, ntasks = 1>
// CHECK: i = #sched.split<threads = 2, over = elems, align = 16>
// CHECK: j = #sched.cl_linear<rows = 8, order = data, lx = 0, ly = 0, lz = 0>
// CHECK: k = #sched.cl_cell<rows = 4, local = 64>
// CL: sched.cl_cell: rows must be one of 1, 2, 4, 8, 16

builtin.module attributes {
  a = #sched.spmm<split = groups, threads = 3, rle, pf = 0, tblock = 64, order = stripe, unroll = 2, nv = 2, rows = 4>,
  b = #sched.gemv<threads = 1, rle, gather = 48, sets = 1, nb_tile = 3, rows = 4>,
  c = #sched.csr<threads = 3, nv = 3>,
  d = #sched.gemm<ntasks = 2, split = n, mcb = 21, kc = 256, ku = 1, nv = 2, mr = 6>,
  e = #sched.conv<pfb = 0, pfa = 64, pf = 2, ntasks = 2, split = p, order = cob, tb = 216, kc = 288, nv = 3, mr = 4, vec = p>,
  f = #sched.depthwise<ntasks = 2, dv = 4>,
  g = #sched.cell<ntasks = 1, bb = 1, nvg = 2>,
  h = #sched.sparse_cell<ntasks = 1, sets = 1, bb = 4, q = 2>,
  i = #sched.split<align = 16, over = elems, threads = 2>,
  j = #sched.cl_linear<lz = 0, ly = 0, lx = 0, order = data, rows = 8>,
  k = #sched.cl_cell<local = 64, rows = 4>
} {
}
