"""Project-wide pytest setup.  Keep minimal.

Without CUDA, run Triton kernels in Triton's CPU interpreter.  This must happen
before anything imports triton, hence here (the root conftest is imported first).
"""
import os

try:
    import torch

    _has_cuda = torch.cuda.is_available()
except Exception:  # pragma: no cover
    _has_cuda = False

if not _has_cuda:
    os.environ.setdefault("TRITON_INTERPRET", "1")
