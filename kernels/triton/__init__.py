"""Triton kernels and their launch functions (plain forward/backward functions with keyword args).

Imported lazily by kernels.ops so that ``import kernels`` works without triton
and so that TRITON_INTERPRET can be set before triton is imported.
"""
