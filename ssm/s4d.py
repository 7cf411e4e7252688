"""S4D: diagonal state-space layer (Gu et al., "On the Parameterization and Initialization of Diagonal State Space Models").

Each of the H channels runs its own N/2 complex states (one of each conjugate pair):

    x_t = Λ̄ x_{t-1} + B̄ u_t,     y_t = 2 Re(C x_t) + D u_t

with Λ̄, B̄ from the continuous Λ (negative real part), B and the step Δ by zero-order
hold or the bilinear transform.  The layer is linear in u: activation and output
projection live in the residual block (``ssm.backbone``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ssm.optim import mark_param

INITS = ("lin", "inv")
DISCRETIZATIONS = ("zoh", "bilinear")
MODES = ("fft",)


def s4d_eigenvalues(d_state: int, init: str) -> torch.Tensor:
    """Initial diagonal Λ (N/2 complex values, one per conjugate pair) for the S4D inits, complex64 (N/2,)."""
    n = torch.arange(d_state // 2, dtype=torch.float64)
    real = -0.5 * torch.ones_like(n)
    if init == "lin":
        imag = math.pi * n
    elif init == "inv":
        imag = (d_state / math.pi) * (d_state / (2 * n + 1) - 1)
    else:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    return torch.complex(real, imag).to(torch.complex64)


def discretize(dtA: torch.Tensor, dt: torch.Tensor, B: torch.Tensor, method: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Λ̄ and B̄ from dtA = Δ·Λ, Δ (broadcastable to dtA) and B.  Returns (log Λ̄, B̄), both complex.

    The log of Λ̄ is returned so powers Λ̄^ℓ = exp(ℓ log Λ̄) never need repeated products.
    """
    if method == "zoh":
        # B̄ = (exp(ΔΛ) - 1)/Λ · B = Δ (exp(ΔΛ) - 1)/(ΔΛ) · B
        return dtA, B * dt * torch.expm1(dtA) / dtA
    if method == "bilinear":
        half = dtA / 2
        return torch.log((1 + half) / (1 - half)), B * dt / (1 - half)
    raise ValueError(f"discretization must be one of {DISCRETIZATIONS}, got {method!r}")


def causal_fft_conv(u: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """y_t = Σ_{ℓ ≤ t} k_ℓ u_{t-ℓ} with FFTs of length 2L (no wrap-around).  u: (B, H, L), k: (H, L)."""
    L = u.shape[-1]
    u_f = torch.fft.rfft(u.float(), n=2 * L)  # (B H L+1)
    k_f = torch.fft.rfft(k.float(), n=2 * L)  # (H L+1)
    return torch.fft.irfft(u_f * k_f, n=2 * L)[..., :L]  # (B H L)


class S4D(nn.Module):
    """Diagonal SSM layer, (B, L, d_model) -> (B, L, d_model).

    Args:
        d_model: channels H.
        d_state: real state size N per channel (N/2 complex states are kept).
        init: eigenvalue init, ``"lin"`` (imag = π n) or ``"inv"`` (imag = N/π (N/(2n+1) - 1)).
        dt_min, dt_max: Δ is initialised log-uniformly in [dt_min, dt_max].
        discretization: ``"zoh"`` or ``"bilinear"``.
        bidirectional: add a second, anti-causal kernel with its own C.
        lr: learning rate of Λ, Δ and B (their own optimiser group, no weight decay);
            None uses the optimiser's.
        mode: how the output is computed; ``"fft"``: causal FFT convolution with the
            materialised kernel (the S4 repository's algorithm).

    Example:
        >>> layer = S4D(d_model=8, d_state=16)
        >>> layer(torch.randn(2, 50, 8)).shape
        torch.Size([2, 50, 8])
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        init: str = "lin",
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        discretization: str = "zoh",
        bidirectional: bool = False,
        lr: float | None = 1e-3,
        mode: str = "fft",
    ):
        super().__init__()
        if d_model < 1:
            raise ValueError(f"d_model must be a positive integer, got {d_model}")
        if d_state < 2 or d_state % 2:
            raise ValueError(f"d_state must be an even integer >= 2 (N/2 complex states are kept), got {d_state}")
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"need 0 < dt_min <= dt_max, got dt_min={dt_min}, dt_max={dt_max}")
        if discretization not in DISCRETIZATIONS:
            raise ValueError(f"discretization must be one of {DISCRETIZATIONS}, got {discretization!r}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.d_model, self.d_state = d_model, d_state
        self.discretization, self.bidirectional, self.mode = discretization, bidirectional, mode
        H, N2 = d_model, d_state // 2

        log_dt = torch.rand(H) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)  # (H)
        Lam = s4d_eigenvalues(d_state, init).expand(H, N2)  # (H N2)
        channels = 2 if bidirectional else 1
        C = torch.randn(channels, H, N2, dtype=torch.complex64)  # (c H N2), unit variance
        self.log_dt = mark_param(nn.Parameter(log_dt), lr=lr)
        # Λ = -exp(log_A_real) + i A_imag keeps the real part negative throughout training.
        self.log_A_real = mark_param(nn.Parameter(torch.log(-Lam.real).clone()), lr=lr)
        self.A_imag = mark_param(nn.Parameter(Lam.imag.clone()), lr=lr)
        self.B = mark_param(nn.Parameter(torch.view_as_real(torch.ones(H, N2, dtype=torch.complex64))), lr=lr)
        self.C = nn.Parameter(torch.view_as_real(C))
        self.D = nn.Parameter(torch.randn(H))

    def ssm_parameters(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(log Λ̄ (H, N/2), B̄ (H, N/2), C (c, H, N/2), D (H,)) of the discretised system."""
        dt = torch.exp(self.log_dt).unsqueeze(-1)  # (H 1)
        Lam = torch.complex(-torch.exp(self.log_A_real), self.A_imag)  # (H N2)
        log_Lam_bar, B_bar = discretize(dt * Lam, dt, torch.view_as_complex(self.B), self.discretization)
        return log_Lam_bar, B_bar, torch.view_as_complex(self.C), self.D

    def kernel(self, length: int) -> torch.Tensor:
        """Convolution kernel K_ℓ = 2 Re Σ_n C_n B̄_n Λ̄_n^ℓ, ℓ < length: (c, H, length) float32."""
        log_Lam_bar, B_bar, C, _ = self.ssm_parameters()
        ell = torch.arange(length, device=log_Lam_bar.device, dtype=torch.float32)  # (L)
        powers = torch.exp(log_Lam_bar.unsqueeze(-1) * ell)  # (H N2 L)
        return 2 * torch.einsum("chn,hnl->chl", C * B_bar, powers).real  # (c H L)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, L, d_model) real -> (B, L, d_model), same dtype."""
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"x must have shape (batch, length, d_model={self.d_model}), got {tuple(x.shape)}")
        if x.shape[1] == 0:
            raise ValueError("x has length 0: S4D needs at least one position")
        u = x.transpose(1, 2)  # (B H L)
        k = self.kernel(u.shape[-1])  # (c H L)
        y = causal_fft_conv(u, k[0])  # (B H L)
        if self.bidirectional:
            y = y + causal_fft_conv(u.flip(-1), k[1]).flip(-1)  # anti-causal part
        y = y + self.D.unsqueeze(-1) * u  # (B H L)
        return y.transpose(1, 2).to(x.dtype)  # (B L H)
