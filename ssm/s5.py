"""S5: simplified state-space layer (Smith, Warrington & Linderman, "Simplified State Space
Layers for Sequence Modeling", ICLR 2023), and S5-PTD (Yu et al., ICLR 2024).

One MIMO system with P states shared by the H channels, diagonal in the eigenbasis of its
initial state matrix:

    x_t = Λ̄ ⊙ x_{t-1} + B̄ u_t,      y_t = Re(C̃ x_t) + D ⊙ u_t        (·2 with conjugate symmetry)

Λ ∈ ℂ^P, B̃ = V⁻¹B ∈ ℂ^{P×H}, C̃ = C V ∈ ℂ^{H×P}, D ∈ ℝ^H, one step Δ per state, ZOH or
bilinear discretisation.  The recurrence runs as ``kernels.diagonal_scan`` over the
(B, L, P) inputs b_t = B̄ u_t (the reference implementation's associative scan).

Initialisation: Λ and V from the normal part of HiPPO-LegS ("HiPPO-N", ``S5``) or from
perturb-then-diagonalize of HiPPO-LegS (``S5PTD``), optionally as J independent blocks of
size P/J (block-diagonal V); B and C are drawn in the original coordinates and mapped by
V⁻¹ and V.  With ``conj_sym`` only one eigenvalue of each conjugate pair is kept (P/2
complex states) and the output is 2·Re(C̃ x).
"""

from __future__ import annotations

import math

import torch
from torch import nn

import kernels
from ssm import inits
from ssm.optim import mark_param
from ssm.s4d import DISCRETIZATIONS, check_input, check_ssm_args, check_state, check_step_input, no_step_when_bidirectional


def discretize_s5(Lam: torch.Tensor, B_tilde: torch.Tensor, dt: torch.Tensor, method: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Λ̄ (P,) and B̄ (P, H) from Λ (P,), B̃ (P, H) and Δ (P,) (one step per state)."""
    dtA = dt * Lam  # (P)
    if method == "zoh":
        Lam_bar = torch.exp(dtA)  # (P)
        return Lam_bar, ((Lam_bar - 1) / Lam).unsqueeze(-1) * B_tilde  # (P) (P H)
    if method == "bilinear":
        inv = 1 / (1 - dtA / 2)  # (P)
        return inv * (1 + dtA / 2), (inv * dt).unsqueeze(-1) * B_tilde
    raise ValueError(f"discretization must be one of {DISCRETIZATIONS}, got {method!r}")


class S5(nn.Module):
    """S5 layer, (B, L, d_model) -> (B, L, d_model).

    Args:
        d_model: channels H.
        d_state: state size P of the whole layer (real state size of the underlying HiPPO
            matrices; P/2 complex states are kept with ``conj_sym``).
        blocks: J, the initial state matrix is block-diagonal with J HiPPO blocks of size P/J.
        conj_sym: keep one eigenvalue of each conjugate pair and output 2·Re(C̃ x).
        dt_min, dt_max: Δ (one per kept state) is initialised log-uniformly in [dt_min, dt_max].
        discretization: ``"zoh"`` or ``"bilinear"``.
        bidirectional: add a second scan over the reversed sequence with its own C̃
            (Λ, B̃, Δ shared, as in the S5 repository); ``step`` is then unavailable.
        lr: learning rate of Λ, Δ and B̃ (own optimiser group, no weight decay); None uses
            the optimiser's.
        backend: ``kernels.diagonal_scan`` implementation: ``"auto"``, ``"torch"``,
            ``"triton"`` or ``"naive"``.

    B (P×H) and C (H×P) are drawn with variances 1/H and 1/P (LeCun normal over their
    inputs; C complex) in HiPPO coordinates, then B̃ = V⁻¹B, C̃ = C V.  D ~ N(0, 1).

    Shapes and dtypes: ``forward`` maps a real (B, L, H) tensor to the same shape and dtype
    (complex64 states).  ``initial_state(B)`` is complex64 (B, P/2) (P without conj_sym);
    ``step`` maps (B, H) and that state to ((B, H), new state).

    Example:
        >>> layer = S5(d_model=8, d_state=16, blocks=2)
        >>> x = torch.randn(2, 50, 8)
        >>> layer(x).shape
        torch.Size([2, 50, 8])
        >>> y0, state = layer.step(x[:, 0], layer.initial_state(2))   # equals layer(x)[:, 0]
        >>> state.shape
        torch.Size([2, 8])
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        blocks: int = 1,
        conj_sym: bool = True,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        discretization: str = "zoh",
        bidirectional: bool = False,
        lr: float | None = 1e-3,
        backend: str = "auto",
    ):
        super().__init__()
        check_ssm_args(d_model, dt_min, dt_max, discretization, backend)
        if int(blocks) < 1 or d_state % blocks:
            raise ValueError(f"blocks must be a positive divisor of d_state={d_state}, got {blocks}")
        if conj_sym and (d_state // blocks) % 2:
            raise ValueError(f"conj_sym needs an even block size d_state/blocks, got d_state={d_state}, blocks={blocks}")
        self.d_model, self.d_state, self.blocks, self.conj_sym = d_model, d_state, blocks, conj_sym
        self.discretization, self.bidirectional, self.backend = discretization, bidirectional, backend
        H, P = d_model, d_state

        diag = inits.block_diagonal(self._diagonalize(P // blocks, conj_sym), blocks)  # Λ (Pk) V (P Pk) V⁻¹ (Pk P)
        Pk = diag.Lam.shape[0]  # kept (complex) states
        self.n_states = Pk
        B = torch.randn(P, H, dtype=torch.float64) / math.sqrt(H)  # (P H)
        channels = 2 if bidirectional else 1
        C = torch.randn(channels, H, P, dtype=torch.complex128) / math.sqrt(P)  # (c H P), E|C|² = 1/P
        B_tilde = (diag.Vinv @ B.to(torch.complex128)).to(torch.complex64)  # (Pk H)
        C_tilde = (C @ diag.V).to(torch.complex64)  # (c H Pk)
        log_dt = torch.rand(Pk) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)  # (Pk)

        # Λ = -exp(log_Lambda_real) + i Lambda_imag keeps the real part negative.
        self.log_Lambda_real = mark_param(nn.Parameter(torch.log((-diag.Lam.real).clamp_min(1e-4)).float()), lr=lr)
        self.Lambda_imag = mark_param(nn.Parameter(diag.Lam.imag.float()), lr=lr)
        self.log_dt = mark_param(nn.Parameter(log_dt), lr=lr)
        self.B = mark_param(nn.Parameter(torch.view_as_real(B_tilde).contiguous()), lr=lr)  # (Pk H 2)
        self.C = nn.Parameter(torch.view_as_real(C_tilde).contiguous())  # (c H Pk 2)
        self.D = nn.Parameter(torch.randn(H))

    def _diagonalize(self, block_size: int, conj_sym: bool) -> inits.Diagonalization:
        """HiPPO-N: the normal part of HiPPO-LegS (S5's initialisation)."""
        return inits.hippo_n(block_size, conj_sym)

    def extra_repr(self) -> str:
        return (
            f"d_model={self.d_model}, d_state={self.d_state}, blocks={self.blocks}, conj_sym={self.conj_sym}, "
            f"discretization={self.discretization!r}, bidirectional={self.bidirectional}, backend={self.backend!r}"
        )

    @property
    def Lambda(self) -> torch.Tensor:
        """Continuous-time eigenvalues Λ, complex64 (P/2,) (P without conj_sym)."""
        return torch.complex(-torch.exp(self.log_Lambda_real.float()), self.Lambda_imag.float())

    def ssm_parameters(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(Λ̄ (Pk,), B̄ (Pk, H), C̃ (c, H, Pk), D (H,)) of the discretised system; complex64 / float32.

        Always computed in float32, also when the module was cast to bf16/fp16.
        """
        Lam_bar, B_bar = discretize_s5(self.Lambda, torch.view_as_complex(self.B.float()), torch.exp(self.log_dt.float()), self.discretization)
        return Lam_bar, B_bar, torch.view_as_complex(self.C.float()), self.D.float()

    def _readout(self, h: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
        """Re(C̃ h) (·2 with conj_sym): h (.., Pk) complex, C (H, Pk) -> (.., H) float32."""
        y = torch.einsum("...p,hp->...h", h, C).real
        return 2 * y if self.conj_sym else y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, L, d_model) real -> (B, L, d_model), same dtype."""
        check_input(x, self.d_model)
        Lam_bar, B_bar, C, D = self.ssm_parameters()
        u = x.float()  # (B L H)
        Bu = torch.einsum("blh,ph->blp", u.to(torch.complex64), B_bar)  # (B L Pk)
        h = kernels.diagonal_scan(Lam_bar, Bu, backend=self.backend)  # (B L Pk)
        y = self._readout(h, C[0])  # (B L H)
        if self.bidirectional:
            # padded positions are zero (the backbone masks), so the reversed scan starts
            # from the last real token with a zero state
            h_rev = kernels.diagonal_scan(Lam_bar, Bu.flip(1), backend=self.backend).flip(1)  # (B L Pk)
            y = y + self._readout(h_rev, C[1])
        return (y + D * u).to(x.dtype)

    def initial_state(self, batch_size: int) -> torch.Tensor:
        """Zero state before the first token: complex64 (batch_size, P/2) (P without conj_sym)."""
        return torch.zeros(batch_size, self.n_states, dtype=torch.complex64, device=self.D.device)

    def step(self, x_t: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One token: x_t (B, d_model), state (B, P/2) complex64 -> (y_t (B, d_model), new state)."""
        no_step_when_bidirectional(self)
        check_step_input(x_t, self.d_model)
        check_state(state, (x_t.shape[0], self.n_states), torch.complex64)
        Lam_bar, B_bar, C, D = self.ssm_parameters()
        u_t = x_t.float()  # (B H)
        state = kernels.diagonal_scan_step(Lam_bar, u_t.to(torch.complex64) @ B_bar.T, state)  # (B Pk)
        return (self._readout(state, C[0]) + D * u_t).to(x_t.dtype), state


class S5PTD(S5):
    """S5-PTD (Yu et al., ICLR 2024): S5 initialised by perturb-then-diagonalize of HiPPO-LegS
    instead of the normal part, so the initial transfer function converges uniformly to HiPPO's.

    Each of the J blocks is A + E = V diag(Λ) V⁻¹ for the P/J × P/J HiPPO-LegS matrix A
    (``ssm.ptd.perturb_then_diagonalize``, computed at init, cached on disk); B̃ = V⁻¹B and
    C̃ = C V.  All other arguments as ``S5``; ``**ptd_kwargs`` go to perturb_then_diagonalize.

    Example:
        >>> S5PTD(d_model=8, d_state=16, blocks=2)(torch.randn(2, 50, 8)).shape
        torch.Size([2, 50, 8])
    """

    def __init__(self, d_model: int, d_state: int = 64, blocks: int = 1, conj_sym: bool = True, dt_min: float = 1e-3,
                 dt_max: float = 1e-1, discretization: str = "zoh", bidirectional: bool = False, lr: float | None = 1e-3,
                 backend: str = "auto", **ptd_kwargs):
        self._ptd_kwargs = dict(ptd_kwargs)
        super().__init__(d_model, d_state=d_state, blocks=blocks, conj_sym=conj_sym, dt_min=dt_min, dt_max=dt_max,
                         discretization=discretization, bidirectional=bidirectional, lr=lr, backend=backend)

    def _diagonalize(self, block_size: int, conj_sym: bool) -> inits.Diagonalization:
        return inits.ptd(block_size, conj_sym, **self._ptd_kwargs)
