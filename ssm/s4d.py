"""S4D: diagonal state-space layer (Gu et al., "On the Parameterization and Initialization of Diagonal State Space Models").

Each of the H channels runs its own N/2 complex states (one of each conjugate pair):

    x_t = Λ̄ x_{t-1} + B̄ u_t,     y_t = 2 Re(C x_t) + D u_t

with Λ̄, B̄ from the continuous Λ (negative real part), B and the step Δ by zero-order
hold or the bilinear transform.  The layer is linear in u: activation and output
projection live in the residual block (``ssm.backbone``).

Two algorithms compute the same output, chosen explicitly with ``mode``:

* ``"scan"`` (default): the chunked scan of ``kernels.s4d_fused_scan`` (never forms the
  (B, L, H, N/2) states); ``backend`` picks its implementation.
* ``"fft"``: the S4 repository's algorithm, a causal FFT convolution with the
  materialised kernel K_ℓ = 2 Re Σ_n C_n B̄_n Λ̄_n^ℓ.  The readable reference.

S4-PTD (``S4PTD``) is this layer with Λ, B̃ = V⁻¹B and C̃ = C V from the
perturb-then-diagonalize decomposition of HiPPO-LegS (``ssm.ptd``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

import kernels
from ssm import inits
from ssm.optim import mark_param

INITS = ("lin", "inv", "legs")
DISCRETIZATIONS = ("zoh", "bilinear")
MODES = ("scan", "fft")
BACKENDS = ("auto", "torch", "triton", "naive")


def s4d_eigenvalues(d_state: int, init: str) -> torch.Tensor:
    """Initial diagonal Λ (N/2 complex values, one per conjugate pair) for the S4D inits, complex64 (N/2,).

    ``"lin"``: -1/2 + iπn; ``"inv"``: -1/2 + i N/π (N/(2n+1) - 1); ``"legs"``: the eigenvalues of
    the normal part of HiPPO-LegS (real part -1/2, see ``ssm.inits.hippo_n``).
    """
    if init == "legs":
        return inits.hippo_n(d_state).Lam.to(torch.complex64)
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


def _check_activation(x: torch.Tensor, d_model: int, name: str, with_length: bool) -> None:
    """Shared by check_input (batch, length, d_model) and check_step_input (batch, d_model)."""
    dims = f"(batch, length, d_model={d_model})" if with_length else f"(batch, d_model={d_model})"
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape {dims}, got {type(x).__name__}")
    if x.dim() != (3 if with_length else 2) or x.shape[-1] != d_model:
        raise ValueError(f"{name} must have shape {dims}, got {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} has batch size 0: the layer needs at least one sequence, got shape {tuple(x.shape)}")
    if with_length and x.shape[1] == 0:
        raise ValueError(f"{name} has length 0: the layer needs at least one position, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a real floating tensor, got dtype {x.dtype}")


def check_input(x: torch.Tensor, d_model: int, name: str = "x") -> None:
    """Raise a ValueError naming ``name`` unless x is a real (batch, length, d_model) tensor with batch and length >= 1."""
    _check_activation(x, d_model, name, with_length=True)


def check_step_input(x_t: torch.Tensor, d_model: int, name: str = "x_t") -> None:
    """Raise a ValueError naming ``name`` unless x_t is a real (batch, d_model) tensor with batch >= 1."""
    _check_activation(x_t, d_model, name, with_length=False)


def check_ssm_args(d_model: int, dt_min: float, dt_max: float, discretization: str, backend: str) -> None:
    """The constructor arguments S4D and S5 share: width, step-size range, discretisation, scan backend."""
    if int(d_model) < 1:
        raise ValueError(f"d_model must be a positive integer, got {d_model}")
    if not 0 < dt_min <= dt_max:
        raise ValueError(f"need 0 < dt_min <= dt_max, got dt_min={dt_min}, dt_max={dt_max}")
    if discretization not in DISCRETIZATIONS:
        raise ValueError(f"discretization must be one of {DISCRETIZATIONS}, got {discretization!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")


def check_state(state: torch.Tensor, shape: tuple[int, ...], dtype: torch.dtype, name: str = "state") -> None:
    """Raise a ValueError unless ``state`` has exactly ``shape`` and ``dtype`` (as made by ``initial_state``)."""
    if not isinstance(state, torch.Tensor) or tuple(state.shape) != tuple(shape) or state.dtype != dtype:
        given = f"{state.dtype} {tuple(state.shape)}" if isinstance(state, torch.Tensor) else type(state).__name__
        raise ValueError(f"{name} must be a {dtype} tensor of shape {tuple(shape)} (see initial_state), got {given}")


def no_step_when_bidirectional(layer: nn.Module) -> None:
    if layer.bidirectional:
        raise RuntimeError(
            f"{type(layer).__name__}.step: a bidirectional layer reads the whole sequence (its backward scan "
            "starts at the last position), so it has no token-by-token form; build the layer with "
            "bidirectional=False for recurrent inference"
        )


class S4D(nn.Module):
    """Diagonal SSM layer, (B, L, d_model) -> (B, L, d_model).

    Args:
        d_model: channels H.
        d_state: real state size N per channel (N/2 complex states are kept).
        init: eigenvalue init, ``"legs"`` (the normal part of HiPPO-LegS, the S4D paper's
            default), ``"lin"`` (imag = π n) or ``"inv"`` (imag = N/π (N/(2n+1) - 1)).
            B is 1 for lin/inv and V⁻¹B_LegS for legs; C is complex standard normal.
        dt_min, dt_max: Δ (one per channel) is initialised log-uniformly in [dt_min, dt_max].
        discretization: ``"zoh"`` or ``"bilinear"``.
        bidirectional: add a second scan over the reversed sequence with its own C
            (Λ, B, Δ shared); ``step`` is then unavailable.
        lr: learning rate of Λ, Δ and B (their own optimiser group, no weight decay,
            via ``ssm.optim.mark_param``); None uses the optimiser's.
        mode: ``"scan"`` (chunked scan, ``kernels.s4d_fused_scan``) or ``"fft"`` (causal FFT
            convolution with the materialised kernel, the reference).  Never switched silently.
        backend: implementation of the scan (``mode="scan"`` only): ``"auto"`` (Triton on CUDA,
            PyTorch chunked otherwise), ``"torch"``, ``"triton"`` or ``"naive"`` (token loop).

    Shapes and dtypes: ``forward`` maps a real (B, L, H) tensor to (B, L, H) of the same
    dtype (float32 arithmetic inside).  ``initial_state(B)`` is complex64 (B, H, N/2);
    ``step`` maps (B, H) and that state to ((B, H), new state).

    Example:
        >>> layer = S4D(d_model=8, d_state=16, init="lin")
        >>> x = torch.randn(2, 50, 8)
        >>> layer(x).shape
        torch.Size([2, 50, 8])
        >>> state = layer.initial_state(2)
        >>> y0, state = layer.step(x[:, 0], state)   # equals layer(x)[:, 0]
        >>> y0.shape, state.shape
        (torch.Size([2, 8]), torch.Size([2, 8, 8]))
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        init: str = "legs",
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        discretization: str = "zoh",
        bidirectional: bool = False,
        lr: float | None = 1e-3,
        mode: str = "scan",
        backend: str = "auto",
    ):
        super().__init__()
        check_ssm_args(d_model, dt_min, dt_max, discretization, backend)
        if d_state < 2 or d_state % 2:
            raise ValueError(f"d_state must be an even integer >= 2 (N/2 complex states are kept), got {d_state}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if mode == "fft" and backend != "auto":
            raise ValueError(f"backend={backend!r} selects a scan implementation; it needs mode='scan' (got mode='fft')")
        self.d_model, self.d_state, self.init = d_model, d_state, init
        self.discretization, self.bidirectional = discretization, bidirectional
        self.mode, self.backend = mode, backend
        H = d_model
        channels = 2 if bidirectional else 1

        Lam, B, C = self._init_ssm(d_state, init, channels, H)  # (N2) (N2) (c H N2)
        N2 = self.n_states = Lam.shape[0]  # complex states per channel: d_state/2
        log_dt = torch.rand(H) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)  # (H)
        Lam = Lam.to(torch.complex64).expand(H, N2)  # (H N2)
        B = B.to(torch.complex64).expand(H, N2)  # (H N2)
        self.log_dt = mark_param(nn.Parameter(log_dt), lr=lr)
        # Λ = -exp(log_A_real) + i A_imag keeps the real part negative throughout training.
        self.log_A_real = mark_param(nn.Parameter(torch.log((-Lam.real).clamp_min(1e-4)).clone()), lr=lr)
        self.A_imag = mark_param(nn.Parameter(Lam.imag.clone()), lr=lr)
        self.B = mark_param(nn.Parameter(torch.view_as_real(B.clone()).contiguous()), lr=lr)
        self.C = nn.Parameter(torch.view_as_real(C.to(torch.complex64)).contiguous())
        self.D = nn.Parameter(torch.randn(H))

    def _init_ssm(self, d_state: int, init: str, channels: int, H: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Initial (Λ (N/2,), B (N/2,), C (channels, H, N/2)), complex."""
        Lam = s4d_eigenvalues(d_state, init)  # (N2)
        if init == "legs":
            B = inits.hippo_n(d_state).B  # V⁻¹ B of HiPPO-LegS, (N2)
        else:
            B = torch.ones(d_state // 2, dtype=torch.complex64)  # (N2)
        C = torch.randn(channels, H, d_state // 2, dtype=torch.complex64)  # (c H N2), E|C|² = 1
        return Lam, B, C

    def extra_repr(self) -> str:
        return (
            f"d_model={self.d_model}, d_state={self.d_state}, init={self.init!r}, discretization={self.discretization!r}, "
            f"bidirectional={self.bidirectional}, mode={self.mode!r}, backend={self.backend!r}"
        )

    def ssm_parameters(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(log Λ̄ (H, N/2), B̄ (H, N/2), C (c, H, N/2), D (H,)) of the discretised system; complex64 / float32.

        Always computed in float32, also when the module was cast to bf16/fp16 (``bf16-true``
        training): complex arithmetic has no half-precision types, and Λ, Δ need the range.
        """
        dt = torch.exp(self.log_dt.float()).unsqueeze(-1)  # (H 1)
        Lam = torch.complex(-torch.exp(self.log_A_real.float()), self.A_imag.float())  # (H N2)
        log_Lam_bar, B_bar = discretize(dt * Lam, dt, torch.view_as_complex(self.B.float()), self.discretization)
        return log_Lam_bar, B_bar, torch.view_as_complex(self.C.float()), self.D.float()

    def kernel(self, length: int) -> torch.Tensor:
        """Convolution kernel K_ℓ = 2 Re Σ_n C_n B̄_n Λ̄_n^ℓ, ℓ < length: (c, H, length) float32."""
        log_Lam_bar, B_bar, C, _ = self.ssm_parameters()
        ell = torch.arange(length, device=log_Lam_bar.device, dtype=torch.float32)  # (L)
        powers = torch.exp(log_Lam_bar.unsqueeze(-1) * ell)  # (H N2 L)
        return 2 * torch.einsum("chn,hnl->chl", C * B_bar, powers).real  # (c H L)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, L, d_model) real -> (B, L, d_model), same dtype."""
        check_input(x, self.d_model)
        if self.mode == "fft":
            y = self._forward_fft(x.transpose(1, 2))  # (B H L)
            return y.transpose(1, 2).to(x.dtype)  # (B L H)
        log_Lam_bar, B_bar, C, D = self.ssm_parameters()
        y, _ = kernels.s4d_fused_scan(x, log_Lam_bar, B_bar, C[0], backend=self.backend)  # (B L H)
        if self.bidirectional:
            # x is zero on padded positions (the backbone masks), so the reversed scan starts
            # from the last real token with a zero state.
            y_rev, _ = kernels.s4d_fused_scan(x.flip(1), log_Lam_bar, B_bar, C[1], backend=self.backend)  # (B L H)
            y = y + y_rev.flip(1)
        y = y.float() + D * x.float()  # (B L H)
        return y.to(x.dtype)

    def _forward_fft(self, u: torch.Tensor) -> torch.Tensor:
        """The FFT-convolution reference: u (B, H, L) -> y (B, H, L) float32."""
        k = self.kernel(u.shape[-1])  # (c H L)
        y = causal_fft_conv(u, k[0])  # (B H L)
        if self.bidirectional:
            y = y + causal_fft_conv(u.flip(-1), k[1]).flip(-1)  # anti-causal part
        return y + self.D.unsqueeze(-1) * u.float()  # (B H L)

    def initial_state(self, batch_size: int) -> torch.Tensor:
        """Zero state before the first token: complex64 (batch_size, d_model, d_state/2)."""
        return torch.zeros(batch_size, self.d_model, self.n_states, dtype=torch.complex64, device=self.D.device)

    def step(self, x_t: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One token: x_t (B, d_model), state (B, d_model, d_state/2) complex64 -> (y_t (B, d_model), new state).

        Running ``step`` over x[:, 0], x[:, 1], ... from ``initial_state`` gives ``forward(x)``
        position by position (causal layers only: raises for bidirectional ones).
        """
        no_step_when_bidirectional(self)
        check_step_input(x_t, self.d_model)
        check_state(state, (x_t.shape[0], self.d_model, self.n_states), torch.complex64)
        log_Lam_bar, B_bar, C, D = self.ssm_parameters()
        y_t, state = kernels.s4d_step(x_t, log_Lam_bar, B_bar, C[0], state)  # (B H), (B H N2)
        return (y_t.float() + D * x_t.float()).to(x_t.dtype), state


class S4PTD(S4D):
    """S4-PTD (Yu et al., "Robustifying State-space Models for Long Sequences via Approximate
    Diagonalization", ICLR 2024): S4D with the perturb-then-diagonalize initialisation.

    HiPPO-LegS A (N×N) is perturbed to A + E = V diag(Λ) V⁻¹ with a well-conditioned V
    (``ssm.ptd.perturb_then_diagonalize``, computed once at init and cached on disk).  The
    layer keeps one eigenvalue of each conjugate pair (N/2 states) with B̃ = V⁻¹B and
    C̃ = C V for a random real C (standard normal); otherwise it is ``S4D`` (same modes,
    backends, discretisations, step).

    Args:
        d_model, d_state, dt_min, dt_max, discretization, bidirectional, lr, mode, backend: as ``S4D``.
        **ptd_kwargs: passed to ``ssm.ptd.perturb_then_diagonalize`` (e.g. the perturbation size).

    Example:
        >>> layer = S4PTD(d_model=8, d_state=16)
        >>> layer(torch.randn(2, 50, 8)).shape
        torch.Size([2, 50, 8])
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        discretization: str = "zoh",
        bidirectional: bool = False,
        lr: float | None = 1e-3,
        mode: str = "scan",
        backend: str = "auto",
        **ptd_kwargs,
    ):
        self._ptd_kwargs = dict(ptd_kwargs)
        super().__init__(
            d_model, d_state=d_state, init="ptd", dt_min=dt_min, dt_max=dt_max, discretization=discretization,
            bidirectional=bidirectional, lr=lr, mode=mode, backend=backend,
        )

    def _init_ssm(self, d_state: int, init: str, channels: int, H: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        diag = inits.ptd(d_state, **self._ptd_kwargs)  # Λ (N2), B̃ (N2), V (N N2)
        C = torch.randn(channels, H, d_state, dtype=torch.float64)  # (c H N) in HiPPO coordinates
        C_tilde = C.to(diag.V.dtype) @ diag.V  # (c H N2)
        return diag.Lam, diag.B, C_tilde
