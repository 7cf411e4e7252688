"""S4-PTD and S5-PTD use the perturb-then-diagonalize eigen-decomposition of HiPPO-LegS
(the PTD optimisation itself is tested with ssm.ptd), and the conjugate halving of
ssm.inits keeps the transfer function of the full system."""

from __future__ import annotations

import torch

from ssm import S4PTD, S5PTD, inits
from ssm.ptd import hippo_legs, perturb_then_diagonalize


def full_ptd(N):
    A, B = hippo_legs(N)
    Lam, V, E = perturb_then_diagonalize(torch.as_tensor(A))
    return torch.as_tensor(A), torch.as_tensor(B), torch.as_tensor(Lam), torch.as_tensor(V), torch.as_tensor(E)


def upper_half(lam):
    return torch.sort(lam[lam.imag > 0].imag).values


def test_s4ptd_uses_the_ptd_eigenvalues_and_B():
    N, H = 16, 3
    A, B, Lam, V, E = full_ptd(N)
    layer = S4PTD(d_model=H, d_state=N)
    lam = torch.complex(-torch.exp(layer.log_A_real), layer.A_imag).detach().to(torch.complex128)  # (H N/2)
    assert lam.shape == (H, N // 2)
    for h in range(H):
        assert torch.allclose(torch.sort(lam[h].imag).values, upper_half(Lam), atol=1e-4)
        assert torch.allclose(torch.sort(lam[h].real).values, torch.sort(Lam[Lam.imag > 0].real).values, atol=1e-4)
    # B̃ = V⁻¹B on the kept eigenvalues
    keep = torch.nonzero(Lam.imag > 0).squeeze(1)
    keep = keep[torch.argsort(Lam.imag[keep])]
    B_tilde = torch.linalg.solve(V, B.to(V.dtype))[keep]
    assert torch.allclose(torch.view_as_complex(layer.B).detach()[0].to(B_tilde.dtype), B_tilde, atol=1e-4, rtol=1e-4)
    # and the eigenvalues are not S4D-LegS's (real part -1/2 for all)
    assert (lam.real - (-0.5)).abs().max() > 0.1


def test_s5ptd_blocks_use_the_ptd_eigenvalues():
    P, J = 16, 2
    *_, Lam, _, _ = full_ptd(P // J)
    layer = S5PTD(d_model=4, d_state=P, blocks=J)
    lam = layer.Lambda.detach().to(torch.complex128)
    assert lam.shape == (P // 2,)
    block = lam[: P // J // 2]
    assert torch.allclose(lam, block.repeat(J))
    assert torch.allclose(torch.sort(block.imag).values, upper_half(Lam), atol=1e-4)


def test_conjugate_halving_keeps_the_impulse_response():
    """2 Re Σ_k (C V)_k (V⁻¹B)_k exp(λ_k t) over the kept half equals C exp(M t) B for the full
    real system M (A + E for PTD, the normal part A_N for HiPPO-N) and a real C."""
    N = 8
    A, B, _, _, E = full_ptd(N)
    P = torch.sqrt(torch.arange(N, dtype=torch.float64) + 0.5)
    C = torch.randn(N, dtype=torch.float64)
    for diag, M in ((inits.ptd(N), A + E), (inits.hippo_n(N), A + torch.outer(P, P))):
        assert diag.Lam.shape == (N // 2,) and diag.V.shape == (N, N // 2) and diag.Vinv.shape == (N // 2, N)
        assert torch.allclose(diag.B, diag.Vinv @ B.to(diag.Vinv.dtype))
        CV = C.to(diag.V.dtype) @ diag.V  # (N/2)
        for t in (0.0, 0.3, 2.0):
            k_half = 2 * (CV * diag.B * torch.exp(diag.Lam * t)).sum().real
            k_full = C @ torch.linalg.matrix_exp(M * t) @ B
            assert torch.allclose(k_half, k_full, rtol=1e-8, atol=1e-8), (t, k_half, k_full)
