"""Helpers shared by the kernels tests (imported by module name; pytest puts this folder on sys.path)."""
from __future__ import annotations

import os

import pytest
import torch

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
TRITON_OK = DEVICE == "cuda" or os.environ.get("TRITON_INTERPRET") == "1"
needs_triton = pytest.mark.skipif(not TRITON_OK, reason="needs CUDA or TRITON_INTERPRET=1")


def rel_err(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """max |actual - expected| / max |expected|  (complex: modulus)."""
    a = actual.detach().to(expected.dtype) if actual.is_complex() else actual.detach().double()
    e = expected.detach() if expected.is_complex() else expected.detach().double()
    return ((a - e).abs().max() / e.abs().max().clamp_min(1e-12)).item()


def assert_all_close(actual, expected, tol, names):
    errs = {}
    for n, a, e in zip(names, actual, expected):
        if e is None:
            assert a is None or a.abs().max() == 0, f"{n}: expected no gradient"
            continue
        assert a is not None, f"{n}: missing"
        assert a.shape == e.shape, f"{n}: shape {tuple(a.shape)} != {tuple(e.shape)}"
        assert torch.isfinite(torch.view_as_real(a) if a.is_complex() else a).all(), f"{n}: not finite"
        errs[n] = rel_err(a, e)
    bad = {n: f"{v:.2e}" for n, v in errs.items() if not v <= tol}
    assert not bad, f"relative max error above {tol:g}: {bad} (all: { {n: f'{v:.1e}' for n, v in errs.items()} })"


def grads(outputs, cotangents, inputs):
    """torch.autograd.grad of sum(<out, cot>) w.r.t. inputs (real part of the complex inner product)."""
    total = 0
    for o, c in zip(outputs, cotangents):
        if o is None:
            continue
        total = total + ((o * c.conj()).real.sum() if o.is_complex() else (o.float() * c.float()).sum())
    return torch.autograd.grad(total, inputs, allow_unused=True)


def cotangent(x: torch.Tensor, seed: int) -> torch.Tensor:
    """Random cotangent made by shape (not randn_like, which copies strides)."""
    g = torch.Generator().manual_seed(seed)
    if x.is_complex():
        return torch.randn(tuple(x.shape), generator=g, dtype=torch.complex64).to(x.device)
    return torch.randn(tuple(x.shape), generator=g).to(x.device, torch.float32)


def delta_inputs(B, T, n_h, H, K, V, gate, init, seed=0, device=DEVICE, strong_gate=False):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, T, H, K, generator=g)
    k = torch.nn.functional.normalize(torch.randn(B, T, n_h, H, K, generator=g), dim=-1)
    v = torch.randn(B, T, n_h, H, V, generator=g)
    beta = 0.05 + 1.9 * torch.rand(B, T, n_h, H, generator=g)  # in (0, 2): negative eigenvalues included
    log_gate = None
    if gate:
        scale = 8.0 if strong_gate else 0.5
        log_gate = -scale * torch.rand(B, T, H, generator=g)
    S0 = torch.randn(B, H, K, V, generator=g) if init else None
    return [None if x is None else x.to(device) for x in (q, k, v, beta, log_gate, S0)]
