"""Diagonal initialisations of the SSM blocks from HiPPO-LegS (the mathematics lives in ``ssm.ptd``).

* ``hippo_n(N)``: the normal part A_N = A + P Pᵀ of HiPPO-LegS diagonalised by a unitary V
  (S4D-LegS, S5's "HiPPO-N"), the low-rank term dropped.
* ``ptd(N)``: perturb-then-diagonalize, A + E = V diag(Λ) V⁻¹ with a well-conditioned V
  (S4-PTD, S5-PTD).

Both keep one eigenvalue of each conjugate pair (``conj_sym``), so N real states become
N/2 complex ones and a layer's output is 2·Re(C̃ x).  They return the kept eigenvalues, the
transformed input vector V⁻¹B of HiPPO-LegS, and the kept columns of V and rows of V⁻¹ (to
map a random B or C into the eigenbasis: B̃ = V⁻¹B, C̃ = C V).
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class Diagonalization(NamedTuple):
    """Kept eigen-decomposition of an N×N real state matrix (M = N/2 with conjugate symmetry, else N), complex128."""

    Lam: torch.Tensor  # (M,) eigenvalues, real part < 0
    B: torch.Tensor  # (M,) V⁻¹ B of HiPPO-LegS, kept rows
    V: torch.Tensor  # (N, M) eigenvectors, kept columns
    Vinv: torch.Tensor  # (M, N) rows of V⁻¹ for the kept eigenvalues


def _check_size(N: int, conj_sym: bool) -> None:
    if int(N) < 1 or (conj_sym and N % 2):
        raise ValueError(f"the HiPPO state size must be a positive{' even' if conj_sym else ''} integer, got {N}")


def _keep(Lam: torch.Tensor, V: torch.Tensor, Vinv: torch.Tensor, B: torch.Tensor, conj_sym: bool) -> Diagonalization:
    """Keep one eigenvalue of each conjugate pair (imag > 0), ordered by imaginary part."""
    from ssm import ptd

    if conj_sym:
        Lam, V, Vinv = ptd.conjugate_half(Lam, V, Vinv)
    order = torch.argsort(Lam.imag, stable=True)
    Lam, V, Vinv = Lam[order], V[:, order], Vinv[order]
    return Diagonalization(Lam, Vinv @ B.to(Vinv.dtype), V, Vinv)


def hippo_n(N: int, conj_sym: bool = True) -> Diagonalization:
    """Eigen-decomposition of the normal part of N×N HiPPO-LegS (real parts -1/2, V unitary)."""
    from ssm import ptd

    _check_size(N, conj_sym)
    A, B = ptd.hippo_legs(N)
    Lam, V = ptd.normal_part_eig(N)
    return _keep(torch.as_tensor(Lam), torch.as_tensor(V), torch.as_tensor(V).conj().T, torch.as_tensor(B), conj_sym)


def ptd(N: int, conj_sym: bool = True, **kwargs) -> Diagonalization:
    """Perturb-then-diagonalize of N×N HiPPO-LegS: eigenvalues and eigenvectors of A + E (``ssm.ptd``)."""
    from ssm import ptd as ptd_module

    _check_size(N, conj_sym)
    A, B = ptd_module.hippo_legs(N)
    Lam, V, _ = ptd_module.perturb_then_diagonalize(A, **kwargs)
    V = torch.as_tensor(V)
    return _keep(torch.as_tensor(Lam), V, torch.linalg.inv(V), torch.as_tensor(B), conj_sym)


def block_diagonal(diag: Diagonalization, blocks: int) -> Diagonalization:
    """J = ``blocks`` independent copies of ``diag``: Λ (J·M,), V (J·N, J·M) and V⁻¹ block-diagonal, B stacked."""
    return Diagonalization(
        diag.Lam.repeat(blocks),
        diag.B.repeat(blocks),
        torch.block_diag(*[diag.V] * blocks),
        torch.block_diag(*[diag.Vinv] * blocks),
    )
