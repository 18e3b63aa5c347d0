"""Benchmarks: peers (grimc vs other engines), icount (instruction counts), per-layer benches."""
