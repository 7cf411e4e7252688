r"""HiPPO-LegS, its normal-part diagonalisation (S4D-LegS / S5 "HiPPO-N") and the
perturb-then-diagonalize (PTD) initialisation of Yu et al., "Robustifying State-space Models
for Long Sequences via Approximate Diagonalization" (ICLR 2024).

Mathematics (0-indexed ``n, k < N``)
-----------------------------------
* HiPPO-LegS: ``A[n, k] = -sqrt(2n+1) sqrt(2k+1)`` for ``n > k``, ``-(n+1)`` for ``n = k``,
  ``0`` for ``n < k``; ``B[n] = sqrt(2n+1)``.
* Normal plus low rank: ``A = A_N - P Pᵀ`` with ``P[n] = sqrt(n + 1/2)``; ``A_N + I/2`` is
  skew-symmetric, so ``A_N`` is normal with eigenvalues ``-1/2 + iθ`` and a unitary
  eigenvector matrix, obtained here from the Hermitian eigenproblem of ``-i (A_N + I/2)``.
  S4D-LegS and S5 keep ``A_N`` and drop ``P Pᵀ``.
* ``A`` itself is diagonalisable only with an exponentially ill-conditioned eigenvector
  matrix (κ ≈ 8e4 at N = 8, 8e10 at N = 16, 3e19 at N = 32).
* PTD: find a small real ``E`` such that ``A + E = V diag(Λ) V⁻¹`` has a well-conditioned
  ``V``; then ``B̃ = V⁻¹ B`` and ``C̃ = C V``.  The transfer function ``C (sI - A - E)⁻¹ B``
  tends to HiPPO's uniformly on the imaginary axis as ``‖E‖ → 0``, whereas S4D-LegS's
  ``C (sI - A_N)⁻¹ B`` keeps resonance spikes there.

The optimiser (``perturb_then_diagonalize``)
-------------------------------------------
minimise    log κ_p(V(A + E)) + γ ‖E‖_F / ‖A‖₂ + (soft eigenvalue margins)
subject to  ‖E‖₂ < ρ ‖A‖₂,  A + E real with exactly ``N mod 2`` real eigenvalues (all others
            in conjugate pairs), and every eigenvalue with negative real part.

* ``E = T · Y (I + YᵀY)^(-1/2)`` with ``T = ρ‖A‖₂`` maps any ``Y`` into the open spectral-norm
  ball of radius ``T``, so the norm constraint holds by construction.
* ``Y = Y₀ + Y(θ)``: ``Y₀ = c·P Pᵀ/‖P‖²`` is a step from ``A`` towards the normal part
  ``A_N`` (for HiPPO-LegS, whose ``P`` is known; ``Y₀ = 0`` for a general ``A`` without ``P``),
  and ``Y(θ)`` has, separately on the strict lower triangle, the strict upper triangle and
  the diagonal, entries that are smooth functions of the normalised indices: a tensor
  Chebyshev series of degree ``degree`` in ``(n, k) ↦ (2n/(N-1) - 1, 2k/(N-1) - 1)``.
  That is ``2 (degree+1)² + (degree+1)`` parameters (36 for degree 3) whatever N; this
  low-dimensional smooth family reaches κ ≈ 5-8 at ‖E‖₂/‖A‖₂ = 0.03-0.05 for every N tested
  (8 … 256), and its optimisation converges in tens of L-BFGS iterations.
* κ_p is a smooth maximum of the condition number: with the columns of V scaled to unit
  norm and σ the singular values of V, ``κ_p = (Σσ^p · Σσ^-p)^(1/p)`` (p = 16), computed from
  the real N × N matrix ``[√2 Re v, √2 Im v]`` built from one eigenvector of each conjugate
  pair (same singular values as V).  κ_p ≥ κ₂ and κ_p ≤ N^(2/p) κ₂.
* Gradients flow through the eigen-decomposition (``torch.linalg.eig`` in complex128,
  backward = first-order eigenvector perturbation theory) and the ball map.
* Quasi-Newton (L-BFGS) with an Armijo backtracking line search that rejects every trial
  point that violates the hard constraints (a conjugate pair collapsing onto the real axis,
  an eigenvalue in the closed right half-plane): the iterates stay feasible, so the
  eigenvalues keep negative real parts without any flipping.  Soft penalties keep the real
  parts at or below ``-real_margin`` and the imaginary parts of the pairs at or above 0.2.
* Deterministic for a given seed (the seed only jitters the initial coefficients) and cached
  on disk as ``.npz`` keyed by A, P and every setting (``$SCANLAB_CACHE/ptd``, default
  ``~/.cache/scanlab/ptd``).

Everything is float64 / complex128 torch on the CPU.  ``python -m ssm.ptd --N 16 32 64``
prints κ(V), ‖E‖₂/‖A‖₂, max Re λ, the run time and the transfer-function errors.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

__all__ = [
    "hippo_legs",
    "hippo_legs_nplr",
    "normal_eig",
    "normal_part_eig",
    "hippo_n_diag",
    "conjugate_half",
    "eigvec_condition",
    "perturb_then_diagonalize",
    "ptd_legs_diag",
    "ptd_cache_path",
    "transfer_function",
    "transfer_function_dense",
    "frequency_grid",
    "ptd_diagnostics",
]

_VERSION = 1  # bump when the optimiser changes: part of every cache key
_F64 = torch.float64
_C128 = torch.complex128

# Fixed internal constants of the objective (part of the cache key through _VERSION).
_P_SOFTMAX = 16  # κ_p exponent
_IMAG_MARGIN = 0.2  # soft lower bound on Im λ of the conjugate pairs
_W_REAL = 10.0  # weight of the soft penalty Σ relu(Re λ + real_margin)²
_W_IMAG = 1.0  # weight of the barrier Σ log(0.2 / Im λ)² for Im λ < 0.2
_START_SCALES = (0.3, 0.6, 1.2, 2.5, 5.0, 10.0, 20.0)  # c in Y₀ = c P Pᵀ/‖P‖², tried in order


class _one_thread:
    """Run torch on one intra-op thread inside the block (restored afterwards).

    The matrices here are at most a few hundred wide: one thread is about as fast as several,
    it avoids the large slow-downs of multi-threaded LAPACK on a busy machine, and it makes the
    PTD result independent of the caller's thread setting (so the cache and the determinism
    tests see the same numbers).
    """

    def __enter__(self):
        self.threads = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        torch.set_num_threads(self.threads)
        return False


# ----------------------------------------------------------------------------------------
# input checks
# ----------------------------------------------------------------------------------------


def _check_N(N, name: str = "N") -> int:
    if isinstance(N, bool) or not isinstance(N, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(N).__name__}")
    if N < 2:
        raise ValueError(f"{name} must be at least 2, got {N}")
    return int(N)


def _as_real_square(A, name: str = "A") -> torch.Tensor:
    """A float64 (N, N) CPU tensor from a torch tensor or numpy array; errors name ``name``."""
    if isinstance(A, np.ndarray):
        if A.dtype != np.float64:
            raise TypeError(f"{name} must have dtype float64, got numpy {A.dtype}")
        A = torch.from_numpy(A)
    if not isinstance(A, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor (float64), got {type(A).__name__}")
    if A.dtype != _F64:
        raise TypeError(f"{name} must have dtype torch.float64, got {A.dtype}")
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"{name} must be a square matrix (N, N), got shape {tuple(A.shape)}")
    if A.shape[0] < 2:
        raise ValueError(f"{name} must be at least 2 x 2, got shape {tuple(A.shape)}")
    if not bool(torch.isfinite(A).all()):
        raise ValueError(f"{name} must be finite")
    return A.detach().cpu()


def _as_complex(x, name: str, ndim: Sequence[int]) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim not in ndim:
        raise ValueError(f"{name} must have {' or '.join(map(str, ndim))} dimensions, got shape {tuple(x.shape)}")
    if not (x.is_floating_point() or x.is_complex()):
        raise TypeError(f"{name} must be a real or complex floating tensor, got {x.dtype}")
    return x.detach().cpu().to(_C128)


# ----------------------------------------------------------------------------------------
# HiPPO-LegS and its normal part
# ----------------------------------------------------------------------------------------


def hippo_legs(N: int) -> tuple[torch.Tensor, torch.Tensor]:
    """HiPPO-LegS state matrix and input vector.

    ``A[n, k] = -sqrt(2n+1) sqrt(2k+1)`` (n > k), ``-(n+1)`` (n = k), ``0`` (n < k);
    ``B[n] = sqrt(2n+1)``.

    Args:
        N: state size, ``N >= 2``.

    Returns:
        ``A`` (N, N) float64 (lower triangular, eigenvalues -1, …, -N), ``B`` (N,) float64.

    Example:
        >>> A, B = hippo_legs(3)
        >>> A
        tensor([[-1.0000,  0.0000,  0.0000],
                [-1.7321, -2.0000,  0.0000],
                [-2.2361, -3.8730, -3.0000]], dtype=torch.float64)
        >>> B
        tensor([1.0000, 1.7321, 2.2361], dtype=torch.float64)
    """
    N = _check_N(N)
    r = torch.sqrt(2 * torch.arange(N, dtype=_F64) + 1)
    A = -torch.tril(torch.outer(r, r), -1) - torch.diag(torch.arange(1, N + 1, dtype=_F64))
    return A + 0.0, r.clone()  # + 0.0 turns the -0.0 above the diagonal into +0.0


def hippo_legs_nplr(N: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Normal plus low-rank split of HiPPO-LegS: ``A = A_N - P Pᵀ``.

    ``P[n] = sqrt(n + 1/2)`` and ``A_N + I/2`` is skew-symmetric
    (``A_N[n, k] = -sqrt(n+1/2) sqrt(k+1/2)`` for n > k and ``+sqrt(n+1/2) sqrt(k+1/2)`` for n < k).

    Args:
        N: state size, ``N >= 2``.

    Returns:
        ``A_N`` (N, N) float64, ``P`` (N,) float64, ``B`` (N,) float64 (as in ``hippo_legs``).

    Example:
        >>> A_N, P, B = hippo_legs_nplr(4)
        >>> A, _ = hippo_legs(4)
        >>> torch.allclose(A_N - torch.outer(P, P), A)
        True
        >>> S = A_N + torch.eye(4, dtype=torch.float64) / 2
        >>> torch.allclose(S, -S.T)
        True
    """
    A, B = hippo_legs(N)
    P = torch.sqrt(torch.arange(N, dtype=_F64) + 0.5)
    A_N = A + torch.outer(P, P)
    # make the skew symmetry exact (the sums above are exact up to one rounding per entry)
    S = A_N + 0.5 * torch.eye(N, dtype=_F64)
    A_N = 0.5 * (S - S.T) - 0.5 * torch.eye(N, dtype=_F64)
    return A_N, P, B


def normal_eig(A_N: torch.Tensor, *, tol: float = 1e-10) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigen-decomposition of a real normal matrix of the form ``d·I + S`` (S skew-symmetric).

    Uses the Hermitian eigensolver on ``-i (A_N - d I)`` so V is unitary to working precision
    (the skew-Hermitian trick), unlike a general ``eig``.

    Args:
        A_N: (N, N) float64 with ``A_N - d I`` skew-symmetric, ``d = mean(diag(A_N))``.
        tol: allowed ``max |S + Sᵀ| / max(1, max |S|)``.

    Returns:
        ``Lam`` (N,) complex128 (``d + iθ``, θ ascending), ``V`` (N, N) complex128 unitary with
        ``A_N = V diag(Lam) Vᴴ``.

    Example:
        >>> A_N, P, B = hippo_legs_nplr(4)
        >>> Lam, V = normal_eig(A_N)
        >>> Lam.real
        tensor([-0.5000, -0.5000, -0.5000, -0.5000], dtype=torch.float64)
        >>> torch.allclose(V.mH @ V, torch.eye(4, dtype=torch.complex128))
        True
    """
    A_N = _as_real_square(A_N, "A_N")
    N = A_N.shape[0]
    d = A_N.diagonal().mean()
    S = A_N - d * torch.eye(N, dtype=_F64)
    if float((S + S.T).abs().max()) > tol * max(1.0, float(S.abs().max())):
        raise ValueError("A_N must be d*I plus a skew-symmetric matrix (a normal matrix of the HiPPO-N form)")
    H = -1j * S.to(_C128)
    H = 0.5 * (H + H.mH)
    theta, V = torch.linalg.eigh(H)  # S V = i V diag(theta)
    return d.to(_C128) + 1j * theta.to(_C128), V


def normal_part_eig(N: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Unitary eigen-decomposition of the normal part ``A_N`` of N × N HiPPO-LegS.

    Args:
        N: state size, ``N >= 2``.

    Returns:
        ``Lam`` (N,) complex128 (real parts -1/2, imaginary parts ascending, in ± pairs),
        ``V`` (N, N) complex128 unitary, ``A_N = V diag(Lam) Vᴴ``.

    Example:
        >>> Lam, V = normal_part_eig(4)
        >>> A_N, _, _ = hippo_legs_nplr(4)
        >>> torch.allclose(V @ torch.diag(Lam) @ V.mH, A_N.to(torch.complex128))
        True
    """
    A_N, _, _ = hippo_legs_nplr(N)
    return normal_eig(A_N)


def _pair_indices(Lam: torch.Tensor, tol: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (kept, partner): kept has Im > 0 (ascending Im), partner[j] holds conj(Lam[kept[j]]).

    Raises ValueError unless the spectrum splits cleanly into conjugate pairs.
    """
    N = Lam.shape[0]
    scale = max(1.0, float(Lam.abs().max()))
    if N % 2:
        raise ValueError(f"conjugate halving needs an even number of eigenvalues, got {N}")
    im = Lam.imag
    if bool((im.abs() <= tol * scale).any()):
        raise ValueError("conjugate halving: an eigenvalue is real (within tol), so the pairing is not clean")
    up = torch.nonzero(im > 0).squeeze(1)
    lo = torch.nonzero(im < 0).squeeze(1)
    if up.numel() != lo.numel():
        raise ValueError(f"conjugate halving: {up.numel()} eigenvalues with Im > 0 but {lo.numel()} with Im < 0")
    up = up[torch.argsort(im[up], stable=True)]
    lo = lo[torch.argsort(-im[lo], stable=True)]
    if float((Lam[up] - Lam[lo].conj()).abs().max()) > tol * scale * 10 + 1e-12:
        # sorting by imaginary part failed to line partners up: match greedily
        free = lo.tolist()
        partner = []
        for j in up.tolist():
            dist = (Lam[free] - Lam[j].conj()).abs()
            partner.append(free.pop(int(torch.argmin(dist))))
        lo = torch.tensor(partner, dtype=torch.long)
        err = float((Lam[up] - Lam[lo].conj()).abs().max())
        if err > 1e3 * tol * scale:
            raise ValueError(f"conjugate halving: eigenvalues are not closed under conjugation (mismatch {err:.3g})")
    return up, lo


def conjugate_half(Lam: torch.Tensor, V: torch.Tensor, rows: Optional[torch.Tensor] = None, *, tol: float = 1e-9):
    """Keep one eigenvalue of each conjugate pair (imaginary part > 0), after checking the pairing.

    For a real matrix ``M = V diag(Lam) V⁻¹`` whose eigenvalues come in conjugate pairs, a
    real linear system only needs the N/2 eigenvalues with ``Im > 0``: its output is
    ``2 Re(C̃ x)`` on the kept states.

    Args:
        Lam: (N,) complex eigenvalues, N even.
        V: (N, N) eigenvectors (columns).
        rows: optional companion indexed by eigenvalue along its first axis, e.g. ``V⁻¹``
            (N, N) or ``B̃ = V⁻¹ B`` (N,) or (N, H); compute it from the full V *before* halving.
        tol: relative tolerance (× max(1, max|Lam|)) for "real" eigenvalues and for the
            conjugate match.

    Returns:
        ``(Lam[kept], V[:, kept])`` or, with ``rows``, ``(Lam[kept], V[:, kept], rows[kept])``,
        ordered by ascending imaginary part.

    Raises:
        ValueError: odd N, a real eigenvalue, or a spectrum that is not conjugate-symmetric.

    Example:
        >>> Lam, V = normal_part_eig(4)
        >>> Lh, Vh, Vinv_h = conjugate_half(Lam, V, V.mH)
        >>> Lh.shape, Vh.shape, Vinv_h.shape
        (torch.Size([2]), torch.Size([4, 2]), torch.Size([2, 4]))
        >>> bool((Lh.imag > 0).all())
        True
    """
    Lam = _as_complex(Lam, "Lam", (1,))
    V = _as_complex(V, "V", (2,))
    if V.shape[1] != Lam.shape[0]:
        raise ValueError(f"V must have one column per eigenvalue: V {tuple(V.shape)}, Lam {tuple(Lam.shape)}")
    up, _ = _pair_indices(Lam, tol)
    if rows is None:
        return Lam[up], V[:, up]
    if not isinstance(rows, torch.Tensor):
        raise TypeError(f"rows must be a torch.Tensor, got {type(rows).__name__}")
    if rows.shape[0] != Lam.shape[0]:
        raise ValueError(f"rows must have one row per eigenvalue: rows {tuple(rows.shape)}, Lam {tuple(Lam.shape)}")
    return Lam[up], V[:, up], rows[up]


def hippo_n_diag(N: int, *, half: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """S4D-LegS / S5 ("HiPPO-N") initialisation: diagonalise ``A_N``, drop ``P Pᵀ``.

    Args:
        N: state size (even when ``half``).
        half: keep one eigenvalue of each conjugate pair (N/2 states, Im > 0, ascending).

    Returns:
        ``Lam`` (M,) complex128 (real parts -1/2), ``V`` (N, M) complex128 (orthonormal
        columns), ``B_tilde = Vᴴ B`` (M,) complex128, with M = N/2 if ``half`` else N.

    Example:
        >>> Lam, V, Bt = hippo_n_diag(8)
        >>> Lam.shape, V.shape, Bt.shape
        (torch.Size([4]), torch.Size([8, 4]), torch.Size([4]))
    """
    N = _check_N(N)
    _, _, B = hippo_legs_nplr(N)
    Lam, V = normal_part_eig(N)
    Bt = V.mH @ B.to(_C128)
    if half:
        return conjugate_half(Lam, V, Bt)
    return Lam, V, Bt


def eigvec_condition(V: torch.Tensor) -> float:
    """2-norm condition number of V after scaling its columns to unit 2-norm (LAPACK's convention).

    Args:
        V: (N, N) real or complex.

    Example:
        >>> eigvec_condition(torch.eye(3, dtype=torch.complex128))
        1.0
    """
    V = _as_complex(V, "V", (2,))
    V = V / torch.linalg.vector_norm(V, dim=0)
    s = torch.linalg.svdvals(V)
    return float(s[0] / s[-1]) if float(s[-1]) > 0 else math.inf


# ----------------------------------------------------------------------------------------
# differentiable pieces of the optimiser
# ----------------------------------------------------------------------------------------


class _Eig(torch.autograd.Function):
    """``torch.linalg.eig`` of a real matrix; backward by first-order perturbation theory.

    Same formula as PyTorch's, without its phase-invariance assertion (our loss is invariant
    to the phase of each eigenvector by construction; the assertion can misfire through
    round-off when V is ill-conditioned early in the optimisation).
    """

    @staticmethod
    def forward(ctx, M):
        w, V = torch.linalg.eig(M)
        ctx.save_for_backward(w, V)
        return w, V

    @staticmethod
    def backward(ctx, gw, gV):
        w, V = ctx.saved_tensors
        Vh = V.mH
        if gV is None:
            inner = torch.diag_embed(gw if gw is not None else torch.zeros_like(w))
        else:
            VhgV = Vh @ gV
            inner = VhgV - (Vh @ V) * VhgV.diagonal().real.unsqueeze(0)
            Ec = w.conj().unsqueeze(0) - w.conj().unsqueeze(1)
            Ec.diagonal().fill_(1.0)
            inner = inner / Ec
            inner.diagonal().copy_(gw if gw is not None else torch.zeros_like(w))
        gM = torch.linalg.solve(Vh, inner @ Vh)
        return gM.real


class _InvSqrtIPlus(torch.autograd.Function):
    """``(I + G)^(-1/2)`` for symmetric positive semi-definite G, stable when eigenvalues repeat.

    Backward by the Daleckii-Krein formula with the exact divided difference
    ``(f(a) - f(b)) / (a - b) = -1 / (√(1+a) √(1+b) (√(1+a) + √(1+b)))`` of ``f = (1+·)^(-1/2)``.
    """

    @staticmethod
    def forward(ctx, G):
        ev, Q = torch.linalg.eigh(G)
        r = torch.sqrt(1 + ev.clamp(min=0))
        ctx.save_for_backward(r, Q)
        return (Q / r) @ Q.T

    @staticmethod
    def backward(ctx, g):
        r, Q = ctx.saved_tensors
        F = -1.0 / (r[:, None] * r[None, :] * (r[:, None] + r[None, :]))
        gs = 0.5 * (g + g.T)
        return Q @ (F * (Q.T @ gs @ Q)) @ Q.T


def _ball(Y: torch.Tensor, T: float) -> torch.Tensor:
    """``T · Y (I + YᵀY)^(-1/2)``: singular values σ ↦ T σ / sqrt(1 + σ²) < T."""
    return T * (Y @ _InvSqrtIPlus.apply(Y.T @ Y))


class _Objective:
    """Feasibility test and objective of the PTD optimisation for one (A, Y₀, settings)."""

    def __init__(self, A, Y0, T, degree, gamma, real_margin, strict_stable):
        N = A.shape[0]
        self.A, self.Y0, self.T, self.N = A, Y0, float(T), N
        self.nA = float(torch.linalg.matrix_norm(A, 2))
        x = np.linspace(-1.0, 1.0, N)
        self.Bc = torch.from_numpy(np.polynomial.chebyshev.chebvander(x, degree)).to(_F64)  # (N, d)
        self.d = degree + 1
        ones = torch.ones(N, N, dtype=_F64)
        self.low = torch.tril(ones, -1) / N
        self.up = torch.triu(ones, 1) / N
        self.gamma, self.real_margin, self.strict_stable = float(gamma), float(real_margin), bool(strict_stable)
        self.n_real = N % 2
        self.nfev = 0

    @property
    def nparam(self) -> int:
        return 2 * self.d * self.d + self.d

    def Y(self, th: torch.Tensor) -> torch.Tensor:
        d, Bc = self.d, self.Bc
        CL = th[: d * d].reshape(d, d)
        CU = th[d * d : 2 * d * d].reshape(d, d)
        CD = th[2 * d * d :]
        return self.Y0 + self.low * (Bc @ CL @ Bc.T) + self.up * (Bc @ CU @ Bc.T) + torch.diag(Bc @ CD) / self.N

    def E(self, th: torch.Tensor) -> torch.Tensor:
        return _ball(self.Y(th), self.T)

    def feasible(self, w: torch.Tensor) -> bool:
        if int((w.imag == 0).sum()) != self.n_real:
            return False
        return (not self.strict_stable) or float(w.real.max()) < 0

    def __call__(self, th: torch.Tensor, need_grad: bool = True):
        """(loss, grad or None); loss = inf at infeasible points."""
        self.nfev += 1
        th = th.detach().clone().requires_grad_(need_grad)
        with torch.enable_grad() if need_grad else torch.no_grad():
            E = self.E(th)
            try:
                w, V = _Eig.apply(self.A + E)
            except RuntimeError:  # LAPACK failed to converge
                return math.inf, None
            if not self.feasible(w.detach()):
                return math.inf, None
            up = torch.nonzero(w.detach().imag > 0).squeeze(1)
            re = torch.nonzero(w.detach().imag == 0).squeeze(1)
            v = V[:, up]
            v = v / torch.linalg.vector_norm(v, dim=0)
            cols = [math.sqrt(2) * v.real, math.sqrt(2) * v.imag]
            if re.numel():
                r = V[:, re].real
                cols.append(r / torch.linalg.vector_norm(r, dim=0))
            W = torch.cat(cols, 1)  # same singular values as the unit-column V
            lm = torch.log(torch.linalg.eigvalsh(W.T @ W).clamp(min=1e-300))
            q = _P_SOFTMAX / 2
            loss = (torch.logsumexp(q * lm, 0) + torch.logsumexp(-q * lm, 0)) / _P_SOFTMAX
            loss = loss + _W_REAL * torch.relu(w.real + self.real_margin).pow(2).sum()
            im = w.imag[up]
            bar = torch.log(_IMAG_MARGIN / im.clamp(max=_IMAG_MARGIN))
            loss = loss + _W_IMAG * bar.pow(2).sum()
            if self.gamma:
                loss = loss + self.gamma * torch.linalg.matrix_norm(E) / self.nA
        if not bool(torch.isfinite(loss)):
            return math.inf, None
        g = torch.autograd.grad(loss, th)[0] if need_grad else None
        return float(loss.detach()), g


def _lbfgs(fun, x, max_iter: int, tol: float, memory: int = 20, patience: int = 5, log=None):
    """L-BFGS with feasibility-preserving Armijo backtracking; returns (x, f, iterations).

    Stops after ``max_iter`` iterations, or when the loss fell by less than ``tol`` over the
    last ``patience`` iterations, or when no feasible decrease is found along the direction.
    """
    f, g = fun(x)
    if not math.isfinite(f):
        raise RuntimeError("PTD optimisation: infeasible starting point")
    S, Yh, hist = [], [], [f]
    it = 0
    for it in range(1, max_iter + 1):
        q = g.clone()
        alphas = []
        for s_, y_ in reversed(list(zip(S, Yh))):
            rho = 1.0 / float(y_ @ s_)
            a = rho * float(s_ @ q)
            q -= a * y_
            alphas.append((rho, a, s_, y_))
        if S:
            q *= float(S[-1] @ Yh[-1]) / float(Yh[-1] @ Yh[-1])
        else:
            q *= min(1.0, 1.0 / max(float(g.norm()), 1e-300))
        for rho, a, s_, y_ in reversed(alphas):
            b = rho * float(y_ @ q)
            q += (a - b) * s_
        d = -q
        gd = float(g @ d)
        if not gd < 0:
            S.clear()
            Yh.clear()
            d = -g * min(1.0, 1.0 / max(float(g.norm()), 1e-300))
            gd = float(g @ d)
        t = 1.0
        while True:
            fn, gn = fun(x + t * d)
            if math.isfinite(fn) and fn <= f + 1e-4 * t * gd:
                break
            t *= 0.3
            if t < 1e-10:
                return x, f, it
        s_ = t * d
        y_ = gn - g
        if float(s_ @ y_) > 1e-12 * float(y_ @ y_):
            S.append(s_)
            Yh.append(y_)
            if len(S) > memory:
                S.pop(0)
                Yh.pop(0)
        x, f, g = x + s_, fn, gn
        hist.append(f)
        if log is not None:
            log(it, f, t)
        if len(hist) > patience and hist[-1 - patience] - f < tol:
            break
    return x, f, it


# ----------------------------------------------------------------------------------------
# cache
# ----------------------------------------------------------------------------------------


def _cache_dir() -> Path:
    root = os.environ.get("SCANLAB_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "scanlab"
    return base / "ptd"


def _digest(t: Optional[torch.Tensor]) -> str:
    if t is None:
        return "none"
    return hashlib.sha256(np.ascontiguousarray(t.numpy()).tobytes()).hexdigest()


def _settings(A, P, max_rel_norm, gamma, seed, steps, degree, real_margin, tol) -> dict:
    return {
        "version": _VERSION,
        "N": int(A.shape[0]),
        "A": _digest(A),
        "P": _digest(P),
        "max_rel_norm": float(max_rel_norm),
        "gamma": float(gamma),
        "seed": int(seed),
        "steps": int(steps),
        "degree": int(degree),
        "real_margin": float(real_margin),
        "tol": float(tol),
    }


def _key_path(settings: dict) -> Path:
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:24]
    return _cache_dir() / f"ptd-N{settings['N']}-{key}.npz"


def _cache_load(path: Path):
    try:
        with np.load(path, allow_pickle=False) as z:
            return torch.from_numpy(z["Lam"].copy()), torch.from_numpy(z["V"].copy()), torch.from_numpy(z["E"].copy())
    except (OSError, KeyError, ValueError):
        return None


def _cache_save(path: Path, Lam, V, E, settings: dict) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp.npz")
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, Lam=Lam.numpy(), V=V.numpy(), E=E.numpy(), settings=np.array(json.dumps(settings)))
        os.replace(tmp, path)
    except OSError as exc:  # an unwritable cache must not break model construction
        warnings.warn(f"PTD cache not written ({path}): {exc}", RuntimeWarning, stacklevel=3)


# ----------------------------------------------------------------------------------------
# perturb-then-diagonalize
# ----------------------------------------------------------------------------------------


def _resolve_P(A: torch.Tensor, P) -> Optional[torch.Tensor]:
    N = A.shape[0]
    if P is not None:
        if isinstance(P, np.ndarray):
            P = torch.from_numpy(P)
        if not isinstance(P, torch.Tensor) or P.dtype != _F64:
            raise TypeError("P must be a torch.float64 tensor of shape (N,) or (N, r)")
        if P.ndim == 1:
            P = P[:, None]
        if P.ndim != 2 or P.shape[0] != N:
            raise ValueError(f"P must have shape (N,) or (N, r) with N = {N}, got {tuple(P.shape)}")
        return P.detach().cpu()
    A_legs, _ = hippo_legs(N)
    if torch.allclose(A, A_legs, rtol=1e-12, atol=1e-12):
        return torch.sqrt(torch.arange(N, dtype=_F64) + 0.5)[:, None]
    return None


def _finalize(A: torch.Tensor, E: torch.Tensor):
    """Eigen-decomposition of A + E with exact conjugate symmetry, unit columns, fixed phases.

    Order: the eigenvalues with Im > 0 (ascending Im), then their conjugates in the same
    order, then the real eigenvalue (odd N).
    """
    w, V = torch.linalg.eig(A + E)
    up = torch.nonzero(w.imag > 0).squeeze(1)
    up = up[torch.argsort(w.imag[up], stable=True)]
    re = torch.nonzero(w.imag == 0).squeeze(1)
    v = V[:, up]
    v = v / torch.linalg.vector_norm(v, dim=0)
    piv = v.abs().argmax(0)
    ph = v[piv, torch.arange(v.shape[1])]
    v = v * (ph.abs() / ph).unsqueeze(0)  # largest entry of each column real > 0
    r = V[:, re].real
    r = r / torch.linalg.vector_norm(r, dim=0)
    r = r * torch.sign(r[r.abs().argmax(0), torch.arange(r.shape[1])]).unsqueeze(0)
    Lam = torch.cat([w[up], w[up].conj(), w[re].real.to(_C128)])
    Vout = torch.cat([v, v.conj(), r.to(_C128)], 1)
    return Lam, Vout


def _ptd_core(A, P, N, max_rel_norm, gamma, seed, steps, degree, real_margin, tol, verbose):
    """Feasible start, then L-BFGS; returns (E, objective, iterations, ‖A‖₂)."""
    nA = float(torch.linalg.matrix_norm(A, 2))
    w0 = torch.linalg.eigvals(A)
    strict = bool(w0.real.max() < 0) or P is not None
    rho = float(max_rel_norm)
    direction = None
    if P is not None:
        direction = P @ P.T
        direction = direction / float(torch.linalg.matrix_norm(direction, 2))
    obj, th0, f0 = None, None, math.inf
    gen = torch.Generator().manual_seed(int(seed))
    for attempt in range(12):
        scales = _START_SCALES if direction is not None else (0.0,)
        for c in scales:
            Y0 = c * direction if direction is not None else torch.zeros(N, N, dtype=_F64)
            obj = _Objective(A, Y0, rho * nA, degree, gamma, real_margin, strict)
            th0 = torch.zeros(obj.nparam, dtype=_F64)
            f0, _ = obj(th0, need_grad=False)
            if math.isfinite(f0):
                break
        if math.isfinite(f0):
            break
        if direction is None:
            raise RuntimeError(
                "perturb_then_diagonalize: A itself must have conjugate-paired eigenvalues in the open left "
                "half-plane when no low-rank factor P is given; pass P with A + P Pᵀ normal"
            )
        rho *= 1.5
    else:
        raise RuntimeError("perturb_then_diagonalize: no feasible starting point found")
    if rho != max_rel_norm:
        warnings.warn(
            f"perturb_then_diagonalize: no feasible perturbation found with ‖E‖₂ < {max_rel_norm:g}·‖A‖₂ for N = {N}; "
            f"using {rho:.3g}·‖A‖₂",
            RuntimeWarning,
            stacklevel=4,
        )
    jitter = 1e-2 * torch.randn(obj.nparam, generator=gen, dtype=_F64)
    fj, _ = obj(th0 + jitter, need_grad=False)
    if math.isfinite(fj):
        th0 = th0 + jitter

    log = None
    if verbose:
        log = lambda it, f, t: print(f"  iter {it:4d}  loss {f:.5f}  (κ_p ≈ {math.exp(f):.3f})  step {t:.2g}")
    th, f, iters = _lbfgs(obj, th0, steps, tol, log=log) if steps > 0 else (th0, f0, 0)
    with torch.no_grad():
        E = obj.E(th)
    return E, obj, iters, nA


def perturb_then_diagonalize(
    A: torch.Tensor,
    *,
    P: Optional[torch.Tensor] = None,
    max_rel_norm: float = 0.04,
    gamma: float = 0.0,
    seed: int = 0,
    steps: int = 150,
    degree: int = 3,
    real_margin: float = 0.5,
    tol: float = 1e-3,
    cache: bool = True,
    verbose: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Perturb-then-diagonalize: a small real E with ``A + E = V diag(Λ) V⁻¹``, V well-conditioned.

    Minimises ``log κ_p(V) + γ ‖E‖_F/‖A‖₂`` (κ_p a smooth maximum of κ₂ of the unit-column V,
    p = 16) subject to ``‖E‖₂ < max_rel_norm · ‖A‖₂``, every eigenvalue of ``A + E`` in the open
    left half-plane and all of them in conjugate pairs (one real eigenvalue when N is odd);
    see the module docstring for the parameterisation and the optimiser.  The result is
    cached on disk (``$SCANLAB_CACHE/ptd`` or ``~/.cache/scanlab/ptd``) under a key of A, P and
    all the settings below; ``ptd_cache_path`` gives the file.

    Args:
        A: (N, N) torch.float64 (a float64 numpy array is accepted), N >= 2.
        P: optional (N,) or (N, r) float64 low-rank factor with ``A + P Pᵀ`` (near) normal; the
            optimisation starts from a step of A towards ``A + P Pᵀ``.  Filled in automatically
            when A is HiPPO-LegS (``P[n] = sqrt(n + 1/2)``).  Without P the start is E = 0,
            which must then already satisfy the constraints.
        max_rel_norm: ρ, the bound ``‖E‖₂ < ρ ‖A‖₂``.  If no feasible start exists inside the
            ball (e.g. N = 2 needs ρ ≈ 0.1), ρ is enlarged by factors of 1.5 with a
            RuntimeWarning.
        gamma: weight γ of ``‖E‖_F / ‖A‖₂`` in the objective (0: use the whole ball).
        seed: seeds the jitter (N(0, 1e-2²)) of the initial smooth coefficients.
        steps: maximum number of L-BFGS iterations.
        degree: Chebyshev degree of the smooth perturbation family.
        real_margin: soft target ``Re λ <= -real_margin`` (hard constraint: ``Re λ < 0``).
        tol: stop when ``log κ_p`` fell by less than ``tol`` over 5 iterations.
        cache: read and write the on-disk cache.
        verbose: print the optimisation progress.

    Returns:
        ``Lam`` (N,) complex128: the eigenvalues with Im > 0 (ascending Im), then their
        conjugates in the same order, then the real one (odd N);
        ``V`` (N, N) complex128 eigenvectors, unit columns, ``V[:, N//2 + j] = conj(V[:, j])``;
        ``E`` (N, N) float64 with ``A + E = V diag(Lam) V⁻¹``.

    Raises:
        TypeError / ValueError: A not a float64 square matrix of size >= 2 (or bad P).
        RuntimeError: no feasible starting point (general A without P).

    Example:
        >>> A, B = hippo_legs(16)
        >>> Lam, V, E = perturb_then_diagonalize(A, cache=False)
        >>> eigvec_condition(V) < 10, float(torch.linalg.matrix_norm(E, 2) / torch.linalg.matrix_norm(A, 2)) <= 0.04
        (True, True)
        >>> bool((Lam.real < 0).all())
        True
        >>> Bt = torch.linalg.solve(V, B.to(torch.complex128))     # B̃ = V⁻¹B
        >>> Lh, Vh, Bh = conjugate_half(Lam, V, Bt)                # N/2 states for S4-PTD / S5-PTD
    """
    A = _as_real_square(A, "A")
    N = A.shape[0]
    if not (isinstance(max_rel_norm, (int, float)) and 0 < max_rel_norm < math.inf):
        raise ValueError(f"max_rel_norm must be a positive number, got {max_rel_norm!r}")
    if not (isinstance(gamma, (int, float)) and gamma >= 0):
        raise ValueError(f"gamma must be a non-negative number, got {gamma!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative int, got {steps!r}")
    if isinstance(degree, bool) or not isinstance(degree, int) or degree < 0:
        raise ValueError(f"degree must be a non-negative int, got {degree!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not (isinstance(real_margin, (int, float)) and real_margin >= 0):
        raise ValueError(f"real_margin must be a non-negative number, got {real_margin!r}")
    if not (isinstance(tol, (int, float)) and tol >= 0):
        raise ValueError(f"tol must be a non-negative number, got {tol!r}")
    P = _resolve_P(A, P)
    settings = _settings(A, P, max_rel_norm, gamma, seed, steps, degree, real_margin, tol)
    path = _key_path(settings)
    if cache and path.exists():
        hit = _cache_load(path)
        if hit is not None and hit[0].shape == (N,) and hit[1].shape == (N, N) and hit[2].shape == (N, N):
            return hit

    t0 = time.perf_counter()
    with _one_thread():
        E, obj, iters, nA = _ptd_core(A, P, N, max_rel_norm, gamma, seed, steps, degree, real_margin, tol, verbose)
        Lam, V = _finalize(A, E)
    if bool((Lam.real >= 0).any()):
        # documented fallback, reachable only when A itself had unstable eigenvalues and no P:
        # reflect the unstable eigenvalues into the left half-plane and re-derive E.
        warnings.warn("perturb_then_diagonalize: flipping eigenvalues with Re >= 0", RuntimeWarning, stacklevel=2)
        Lam = torch.complex(-Lam.real.abs().clamp(min=1e-6), Lam.imag)
        E = (V @ torch.diag(Lam) @ torch.linalg.inv(V)).real - A
    if verbose:
        print(
            f"PTD N={N}: κ={eigvec_condition(V):.3f}  ‖E‖₂/‖A‖₂={float(torch.linalg.matrix_norm(E, 2)) / nA:.4f}  "
            f"max Re λ={float(Lam.real.max()):.3f}  iterations={iters}  evaluations={obj.nfev}  "
            f"time={time.perf_counter() - t0:.2f}s"
        )
    E = E.contiguous()
    if cache:
        _cache_save(path, Lam, V, E, settings)
    return Lam, V, E


def ptd_cache_path(A: torch.Tensor, *, P=None, max_rel_norm: float = 0.04, gamma: float = 0.0, seed: int = 0,
                   steps: int = 150, degree: int = 3, real_margin: float = 0.5, tol: float = 1e-3) -> Path:
    """Cache file of ``perturb_then_diagonalize(A, ...)`` with the same keyword arguments.

    Example:
        >>> A, _ = hippo_legs(8)
        >>> ptd_cache_path(A).name.startswith("ptd-N8-")
        True
    """
    A = _as_real_square(A, "A")
    P = _resolve_P(A, P)
    return _key_path(_settings(A, P, max_rel_norm, gamma, seed, steps, degree, real_margin, tol))


def ptd_legs_diag(N: int, *, half: bool = True, **ptd_kwargs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """S4-PTD / S5-PTD initialisation: PTD of N × N HiPPO-LegS with ``B̃ = V⁻¹ B``.

    Args:
        N: state size (even when ``half``).
        half: keep one eigenvalue of each conjugate pair (N/2 states, Im > 0, ascending).
        **ptd_kwargs: passed to ``perturb_then_diagonalize``.

    Returns:
        ``Lam`` (M,) complex128, ``V`` (N, M) complex128 (use ``C̃ = C V``), ``B_tilde`` (M,)
        complex128, with M = N/2 if ``half`` else N.

    Example:
        >>> Lam, V, Bt = ptd_legs_diag(8, cache=False)
        >>> Lam.shape, V.shape, Bt.shape
        (torch.Size([4]), torch.Size([8, 4]), torch.Size([4]))
    """
    N = _check_N(N)
    A, B = hippo_legs(N)
    Lam, V, _ = perturb_then_diagonalize(A, **ptd_kwargs)
    Bt = torch.linalg.solve(V, B.to(_C128))
    if half:
        return conjugate_half(Lam, V, Bt)
    return Lam, V, Bt


# ----------------------------------------------------------------------------------------
# transfer functions and diagnostics
# ----------------------------------------------------------------------------------------


def transfer_function(Lam, B_tilde, C_tilde, omegas, *, conj_pairs: bool = False) -> torch.Tensor:
    """Transfer function of a diagonal system at ``s = iω``: ``G(iω) = Σ_k C̃_k B̃_k / (iω - λ_k)``.

    Args:
        Lam: (M,) eigenvalues.
        B_tilde: (M,) ``V⁻¹ B`` (kept rows).
        C_tilde: (M,) ``C V`` (kept columns).
        omegas: (K,) real frequencies.
        conj_pairs: the system is real and only one eigenvalue of each conjugate pair is
            given; adds the conjugate terms ``conj(C̃_k B̃_k) / (iω - conj(λ_k))``.

    Returns:
        (K,) complex128.

    Example:
        >>> transfer_function(torch.tensor([-1.0 + 0j]), torch.ones(1), torch.ones(1), torch.zeros(1))
        tensor([1.+0.j], dtype=torch.complex128)
    """
    Lam = _as_complex(Lam, "Lam", (1,))
    Bt = _as_complex(B_tilde, "B_tilde", (1,))
    Ct = _as_complex(C_tilde, "C_tilde", (1,))
    if not (Lam.shape == Bt.shape == Ct.shape):
        raise ValueError(f"Lam, B_tilde, C_tilde must have the same shape, got {tuple(Lam.shape)}, "
                         f"{tuple(Bt.shape)}, {tuple(Ct.shape)}")
    w = torch.as_tensor(omegas, dtype=_F64).reshape(-1)
    s = (1j * w).to(_C128)[:, None]
    r = Ct * Bt
    G = (r / (s - Lam)).sum(1)
    if conj_pairs:
        G = G + (r.conj() / (s - Lam.conj())).sum(1)
    return G


def transfer_function_dense(A, B, C, omegas, *, chunk: int = 64) -> torch.Tensor:
    """``G(iω) = C (iωI - A)⁻¹ B`` for a dense real A, without diagonalising it.

    Lower-triangular A (HiPPO-LegS) is solved by forward substitution vectorised over the
    frequencies (O(K N²)); any other A by batched LU solves in chunks (O(K N³)).

    Args:
        A: (N, N) float64; B, C: (N,) real or complex; omegas: (K,) real.

    Returns:
        (K,) complex128.

    Example:
        >>> A, B = hippo_legs(4)
        >>> G = transfer_function_dense(A, B, B, torch.tensor([0.0, 1.0]))
        >>> G.shape
        torch.Size([2])
    """
    A = _as_real_square(A, "A")
    N = A.shape[0]
    B = _as_complex(B, "B", (1,))
    C = _as_complex(C, "C", (1,))
    if B.shape[0] != N or C.shape[0] != N:
        raise ValueError(f"B and C must have shape ({N},), got {tuple(B.shape)} and {tuple(C.shape)}")
    w = torch.as_tensor(omegas, dtype=_F64).reshape(-1)
    s = (1j * w).to(_C128)
    Ac = A.to(_C128)
    if bool((torch.triu(A, 1) == 0).all()):
        X = torch.empty(w.shape[0], N, dtype=_C128)
        for n in range(N):
            acc = B[n] + X[:, :n] @ Ac[n, :n]
            X[:, n] = acc / (s - Ac[n, n])
        return X @ C
    out = []
    I = torch.eye(N, dtype=_C128)
    for i in range(0, w.shape[0], chunk):
        M = s[i : i + chunk, None, None] * I - Ac
        x = torch.linalg.solve(M, B.expand(M.shape[0], N).unsqueeze(-1)).squeeze(-1)
        out.append(x @ C)
    return torch.cat(out)


def frequency_grid(N: int, *, num: int = 2000, extra: Sequence[torch.Tensor] = ()) -> torch.Tensor:
    """Frequencies for the transfer-function comparisons (a real system: ω >= 0 suffices).

    ``{0} ∪ logspace(-3, log10(2‖A‖₂), num) ∪ {Im λ > 0 for λ in each of extra}``, sorted,
    with A = HiPPO-LegS(N); ``2‖A‖₂`` exceeds every |Im λ| of A_N and of the PTD matrices,
    and adding the eigenvalues' imaginary parts puts grid points on the resonance peaks.

    Example:
        >>> frequency_grid(8, num=10).shape
        torch.Size([11])
    """
    N = _check_N(N)
    A, _ = hippo_legs(N)
    top = math.log10(2 * float(torch.linalg.matrix_norm(A, 2)))
    parts = [torch.zeros(1, dtype=_F64), torch.logspace(-3, top, num, dtype=_F64)]
    for lam in extra:
        im = torch.as_tensor(lam).imag.to(_F64)
        parts.append(im[im > 0])
    return torch.unique(torch.cat(parts))


def ptd_diagnostics(N: int, *, seed: int = 0, num_freqs: int = 2000, **ptd_kwargs) -> dict:
    """PTD of HiPPO-LegS compared with HiPPO-LegS itself and with S4D-LegS (``A_N``).

    B = HiPPO's B / ‖B‖₂ and C = a standard normal vector (``torch.Generator`` seeded with
    ``seed``) / ‖C‖₂.  On the grid ``frequency_grid(N, num=num_freqs, extra=(Λ_S4D, Λ_PTD))``:

    * ``G_LegS(iω) = C (iω - A)⁻¹ B`` (dense, exact),
    * ``G_PTD(iω) = C (iω - A - E)⁻¹ B = Σ (C V)_k (V⁻¹ B)_k / (iω - λ_k)``,
    * ``G_S4D(iω) = C (iω - A_N)⁻¹ B`` (S4D-LegS: diagonalise A_N, drop P Pᵀ).

    Args:
        N: state size; seed: seeds C (not the PTD, whose seed is ``ptd_kwargs['seed']``).
        num_freqs: number of log-spaced frequencies; **ptd_kwargs: for perturb_then_diagonalize.

    Returns:
        dict with ``N``, ``kappa`` (κ₂ of the unit-column V), ``rel_norm`` (‖E‖₂/‖A‖₂),
        ``max_real`` (max Re λ), ``recon`` (‖A+E - VΛV⁻¹‖₂/‖A‖₂), ``kappa_A`` (κ of the
        eigenvectors of A itself), ``sup_err_ptd`` and ``sup_err_s4d`` (sup over the grid of
        |G_PTD - G_LegS| and |G_S4D - G_LegS|), ``sup_legs`` (sup |G_LegS|), ``seconds`` (PTD
        wall time, ~0 when cached) and ``num_freqs`` (grid size).

    Example:
        >>> d = ptd_diagnostics(16, cache=False)
        >>> d["sup_err_ptd"] < d["sup_err_s4d"]
        True
    """
    with _one_thread():
        return _diagnostics(N, seed, num_freqs, ptd_kwargs)


def _diagnostics(N, seed, num_freqs, ptd_kwargs) -> dict:
    N = _check_N(N)
    A, B = hippo_legs(N)
    t0 = time.perf_counter()
    Lam, V, E = perturb_then_diagonalize(A, **ptd_kwargs)
    seconds = time.perf_counter() - t0
    nA = float(torch.linalg.matrix_norm(A, 2))
    gen = torch.Generator().manual_seed(int(seed))
    Bn = B / torch.linalg.vector_norm(B)
    C = torch.randn(N, generator=gen, dtype=_F64)
    C = C / torch.linalg.vector_norm(C)
    Lam_n, V_n = normal_part_eig(N)
    w = frequency_grid(N, num=num_freqs, extra=(Lam_n, Lam))
    G_legs = transfer_function_dense(A, Bn, C, w)
    Vc = V
    G_ptd = transfer_function(Lam, torch.linalg.solve(Vc, Bn.to(_C128)), C.to(_C128) @ Vc, w)
    G_s4d = transfer_function(Lam_n, V_n.mH @ Bn.to(_C128), C.to(_C128) @ V_n, w)
    recon = V @ torch.diag(Lam) @ torch.linalg.inv(V) - (A + E).to(_C128)
    _, VA = torch.linalg.eig(A)
    return {
        "N": N,
        "kappa": eigvec_condition(V),
        "rel_norm": float(torch.linalg.matrix_norm(E, 2)) / nA,
        "max_real": float(Lam.real.max()),
        "recon": float(torch.linalg.matrix_norm(recon, 2)) / nA,
        "kappa_A": eigvec_condition(VA),
        "sup_err_ptd": float((G_ptd - G_legs).abs().max()),
        "sup_err_s4d": float((G_s4d - G_legs).abs().max()),
        "sup_legs": float(G_legs.abs().max()),
        "seconds": seconds,
        "num_freqs": int(w.shape[0]),
    }


# ----------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m ssm.ptd --N 16 32 64 [--gamma G] [--seed S] [--max-rel-norm R] [--no-cache]``."""
    ap = argparse.ArgumentParser(
        prog="python -m ssm.ptd",
        description="Perturb-then-diagonalize HiPPO-LegS: conditioning, perturbation size and transfer-function "
        "errors (B = HiPPO B/‖B‖, C = seeded normal/‖C‖; sup over frequency_grid, see ptd_diagnostics).",
    )
    ap.add_argument("--N", type=int, nargs="+", default=[64], help="state sizes")
    ap.add_argument("--gamma", type=float, default=0.0, help="weight of ‖E‖_F/‖A‖₂ in the objective")
    ap.add_argument("--seed", type=int, default=0, help="seed of the PTD jitter and of C")
    ap.add_argument("--max-rel-norm", type=float, default=0.04, help="bound on ‖E‖₂/‖A‖₂")
    ap.add_argument("--steps", type=int, default=150, help="maximum L-BFGS iterations")
    ap.add_argument("--no-cache", action="store_true", help="neither read nor write the on-disk cache")
    ap.add_argument("--verbose", action="store_true", help="print the optimisation progress")
    args = ap.parse_args(argv)
    head = f"{'N':>5} {'kappa(V)':>9} {'|E|/|A|':>8} {'max Re':>8} {'time[s]':>8} {'sup|G_PTD-G|':>13} {'sup|G_S4D-G|':>13} {'sup|G|':>8}"
    print(head)
    print("-" * len(head))
    for N in args.N:
        d = ptd_diagnostics(
            N, seed=args.seed, gamma=args.gamma, max_rel_norm=args.max_rel_norm, steps=args.steps,
            cache=not args.no_cache, verbose=args.verbose,
        )
        print(
            f"{d['N']:>5} {d['kappa']:>9.3f} {d['rel_norm']:>8.4f} {d['max_real']:>8.3f} {d['seconds']:>8.2f} "
            f"{d['sup_err_ptd']:>13.4g} {d['sup_err_s4d']:>13.4g} {d['sup_legs']:>8.3g}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
