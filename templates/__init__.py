"""Jinja templates for the C, NEON, AVX and OpenCL targets (package data)."""
