// RUN: not grimc-opt %s 2>&1 | filecheck %s

// An invalid #bcr.encoding is reported at its text, with the rule it breaks.

func.func @too_many_kept(%a: tensor<2x512xf32>) -> tensor<2x10xf32> {
  %y = bcr.matmul %a weights("fc", #bcr.encoding<matrix = [10, 512], block = [4, 16], keep = [5, 4], density = 0.1>) : tensor<2x512xf32> -> tensor<2x10xf32>
  func.return %y : tensor<2x10xf32>
}
// CHECK:      grimc-opt: error: {{.*}}encoding_error.mlir:6:49
// CHECK-NEXT: %y = bcr.matmul %a weights("fc", #bcr.encoding<matrix = [10, 512], block = [4, 16], keep = [5, 4], density = 0.1>)
// CHECK-NEXT: {{ +}}^^^^{{\^*}}
// CHECK-NEXT: {{ +}}bcr.encoding: keeps 5 rows per block, expected 0 to 4
