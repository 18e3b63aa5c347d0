"""Per-op lowerings to kernel templates, one module per op family.

Every module here is imported by the code generator; each registers its
lowerings with `@lowers(OpClass)` (see grimc.emit.kernel).
"""
