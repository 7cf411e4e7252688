"""DeltaProduct (Siems et al., "DeltaProduct: Improving State-Tracking in Linear RNNs via
Householder Products", 2025); DeltaNet is the case n_householder = 1.

Per head, a state S ∈ ℝ^{K×V} is updated for every token t with n_h generalised
Householder steps (DESIGN §1c):

    S ← exp(g_t) S                                            (optional forget gate, g_t ≤ 0)
    for j = 1..n_h:  S ← S + β_{t,j} k_{t,j} (v_{t,j} − Sᵀ k_{t,j})ᵀ = (I − β k kᵀ) S + β k vᵀ
    o_t = Sᵀ q_t

The layer does the modelling (the paper's language-model layer, as in
flash-linear-attention's GatedDeltaProduct): bias-free q, k, v, β projections (k, v and β
with n_h heads' worth), a causal depthwise short convolution with SiLU on q, k, v, L2-normalised
q and k, β = sigmoid(·) (eigenvalues of each Householder factor in [0, 1]) or 2·sigmoid(·)
([−1, 1], ``allow_neg_eigval``), an optional forget gate g = −exp(A_log)·softplus(a + dt_bias),
per-head RMSNorm of the output with an optional SiLU output gate, and an output projection.
The recurrence itself is ``kernels.delta_product`` (chunked WY scan).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

import kernels
from ssm.optim import mark_param
from ssm.s4d import BACKENDS, check_input, check_step_input, no_step_when_bidirectional


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """x / sqrt(mean(x²) + eps) · weight over the last dimension, in float32."""
    x = x.float()
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


class ShortConv(nn.Module):
    """Causal depthwise 1-D convolution followed by SiLU, no bias: (B, L, C) -> (B, L, C).

    ``step`` keeps the last ``kernel_size - 1`` inputs as its state.
    """

    def __init__(self, channels: int, kernel_size: int = 4):
        super().__init__()
        self.channels, self.kernel_size = channels, kernel_size
        self.weight = nn.Parameter(torch.empty(channels, kernel_size))  # (C W)
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # as nn.Conv1d (fan_in = kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = F.pad(x.transpose(1, 2), (self.kernel_size - 1, 0))  # (B C L+W-1): causal padding
        y = F.conv1d(u, self.weight.unsqueeze(1).to(x.dtype), groups=self.channels)  # (B C L)
        return F.silu(y).transpose(1, 2)  # (B L C)

    def initial_state(self, batch_size: int, device=None, dtype=torch.float32) -> torch.Tensor:
        return torch.zeros(batch_size, self.kernel_size - 1, self.channels, device=device, dtype=dtype)  # (B W-1 C)

    def step(self, x_t: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        window = torch.cat([state.to(x_t.dtype), x_t.unsqueeze(1)], dim=1)  # (B W C), oldest first
        y_t = torch.einsum("bwc,cw->bc", window, self.weight.to(x_t.dtype))  # (B C)
        return F.silu(y_t), window[:, 1:]


class DeltaCore(nn.Module):
    """One direction of the layer: projections, short convolution, normalisation, gates and
    the DeltaProduct recurrence.  (B, L, d_model) -> per-head outputs (B, L, H, V)."""

    def __init__(self, d_model, n_heads, head_k_dim, head_v_dim, n_householder, allow_neg_eigval, use_forget_gate, use_short_conv, conv_size, backend):
        super().__init__()
        H, K, V, n_h = n_heads, head_k_dim, head_v_dim, n_householder
        self.H, self.K, self.V, self.n_h = H, K, V, n_h
        self.allow_neg_eigval, self.use_forget_gate, self.backend = allow_neg_eigval, use_forget_gate, backend
        # No biases: an all-zero input gives q = k = v = 0, which leaves the state unchanged
        # (the backbone zeroes padded positions before every layer).
        self.q_proj = nn.Linear(d_model, H * K, bias=False)
        self.k_proj = nn.Linear(d_model, n_h * H * K, bias=False)
        self.v_proj = nn.Linear(d_model, n_h * H * V, bias=False)
        self.b_proj = nn.Linear(d_model, n_h * H, bias=False)
        self.conv = ShortConv(H * K + n_h * H * (K + V), conv_size) if use_short_conv else None
        if use_forget_gate:
            self.a_proj = nn.Linear(d_model, H, bias=False)
            # Mamba-2 / Gated DeltaNet init: decay rates A ~ U(1, 16), softplus(dt_bias) log-uniform in [1e-3, 1e-1].
            self.A_log = mark_param(nn.Parameter(torch.log(torch.empty(H).uniform_(1, 16))), weight_decay=0.0)
            dt = torch.exp(torch.rand(H) * (math.log(0.1) - math.log(0.001)) + math.log(0.001)).clamp_min(1e-4)
            self.dt_bias = mark_param(nn.Parameter(dt + torch.log(-torch.expm1(-dt))), weight_decay=0.0)  # softplus⁻¹(dt)

    def features(self, x: torch.Tensor, conv_state: torch.Tensor | None = None):
        """q (.., H, K), k (.., n_h, H, K), v (.., n_h, H, V), β (.., n_h, H), g (.., H) or None for x (.., d_model).

        x is (B, L, d_model) for a sequence, or (B, d_model) for one step with ``conv_state``;
        returns the new conv state last (None for sequences).
        """
        H, K, V, n_h = self.H, self.K, self.V, self.n_h
        qkv = torch.cat([self.q_proj(x), self.k_proj(x), self.v_proj(x)], dim=-1)  # (.. HK + n_h H (K+V))
        if self.conv is None:
            qkv = F.silu(qkv)
        elif conv_state is None:
            qkv = self.conv(qkv)
        else:
            qkv, conv_state = self.conv.step(qkv, conv_state)
        q, k, v = qkv.split([H * K, n_h * H * K, n_h * H * V], dim=-1)
        lead = x.shape[:-1]
        q = F.normalize(q.unflatten(-1, (H, K)), dim=-1)  # (.. H K)
        k = F.normalize(k.unflatten(-1, (n_h, H, K)), dim=-1)  # (.. n_h H K): Householder vectors, unit norm
        v = v.unflatten(-1, (n_h, H, V))  # (.. n_h H V)
        beta = torch.sigmoid(self.b_proj(x).float()).unflatten(-1, (n_h, H))  # (.. n_h H)
        if self.allow_neg_eigval:
            beta = 2 * beta  # eigenvalue 1 - β of each factor in [-1, 1]
        g = None
        if self.use_forget_gate:
            g = -torch.exp(self.A_log) * F.softplus(self.a_proj(x).float() + self.dt_bias)  # (.. H), ≤ 0
        assert q.shape[:-2] == lead
        return q, k, v, beta, g, conv_state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v, beta, g, _ = self.features(x)
        o, _ = kernels.delta_product(q, k, v, beta, log_gate=g, backend=self.backend)  # (B L H V)
        return o

    def initial_state(self, batch_size: int) -> dict[str, torch.Tensor]:
        device = self.q_proj.weight.device
        state = {"S": torch.zeros(batch_size, self.H, self.K, self.V, device=device, dtype=torch.float32)}  # (B H K V)
        if self.conv is not None:
            state["conv"] = self.conv.initial_state(batch_size, device=device, dtype=self.q_proj.weight.dtype)
        return state

    def step(self, x_t: torch.Tensor, state: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        q, k, v, beta, g, conv_state = self.features(x_t, state.get("conv"))
        o_t, S = kernels.delta_product_step(q, k, v, beta, g, state["S"])  # (B H V), (B H K V)
        new = {"S": S}
        if conv_state is not None:
            new["conv"] = conv_state
        return o_t, new


class DeltaProduct(nn.Module):
    """DeltaProduct / DeltaNet token mixer, (B, L, d_model) -> (B, L, d_model).

    Args:
        d_model: model width.
        n_heads: heads H; each has its own K×V state.
        head_dim: key dimension K per head; default ``d_model // n_heads``.
        expand_v: value dimension V = ``head_dim * expand_v`` per head.
        n_householder: Householder steps n_h per token (1: DeltaNet).
        allow_neg_eigval: β = 2·sigmoid (each factor's eigenvalue 1 - β in [-1, 1], needed for
            parity and permutation groups); False: β = sigmoid ([0, 1]).
        use_forget_gate: per-head decay g = -exp(A_log)·softplus(a_proj(x) + dt_bias) before the
            Householder steps (Gated DeltaProduct).
        use_short_conv: causal depthwise convolution with SiLU on q, k, v (SiLU only when False).
        conv_size: kernel size of that convolution.
        use_output_gate: multiply the normalised output by SiLU(g_proj(x)).
        norm_eps: epsilon of the per-head RMSNorm of the output.
        bidirectional: add a second direction (its own q, k, v, β, gate projections and
            convolution) run over the reversed sequence; the per-head outputs of the two
            directions are summed before the norm.  ``step`` is then unavailable.
        backend: ``kernels.delta_product`` implementation: ``"auto"`` (Triton on CUDA, PyTorch
            chunked otherwise), ``"torch"``, ``"triton"`` or ``"naive"``.

    The defaults are the DeltaProduct paper's state-tracking layer (n_h = 2, negative
    eigenvalues, no forget gate, short convolution, gated output norm, as in
    flash-linear-attention's ``GatedDeltaProduct`` with ``use_forget_gate=False``) with
    4 heads and V = K.

    Shapes and dtypes: ``forward`` maps a real (B, L, d_model) tensor to the same shape and
    dtype (the recurrence accumulates in float32).  ``initial_state(B)`` is a dict with
    ``"S"`` (B, H, K, V) float32 and, with the short convolution, ``"conv"``
    (B, conv_size - 1, channels); ``step`` maps (B, d_model) and that state to
    ((B, d_model), new state).

    Example:
        >>> layer = DeltaProduct(d_model=32, n_heads=2, n_householder=2)
        >>> x = torch.randn(2, 20, 32)
        >>> layer(x).shape
        torch.Size([2, 20, 32])
        >>> state = layer.initial_state(2)
        >>> y0, state = layer.step(x[:, 0], state)   # equals layer(x)[:, 0]
        >>> y0.shape, state["S"].shape
        (torch.Size([2, 32]), torch.Size([2, 2, 16, 16]))
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int = 4,
        head_dim: int | None = None,
        expand_v: float = 1.0,
        n_householder: int = 2,
        allow_neg_eigval: bool = True,
        use_forget_gate: bool = False,
        use_short_conv: bool = True,
        conv_size: int = 4,
        use_output_gate: bool = True,
        norm_eps: float = 1e-5,
        bidirectional: bool = False,
        backend: str = "auto",
    ):
        super().__init__()
        for name, value in (("d_model", d_model), ("n_heads", n_heads), ("n_householder", n_householder), ("conv_size", conv_size)):
            if int(value) < 1:
                raise ValueError(f"{name} must be a positive integer, got {value}")
        if head_dim is None:
            if d_model % n_heads:
                raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}; pass head_dim explicitly")
            head_dim = d_model // n_heads
        head_v_dim = head_dim * expand_v
        if head_dim < 1 or head_v_dim < 1 or not float(head_v_dim).is_integer():
            raise ValueError(f"head_dim * expand_v must be a positive integer, got head_dim={head_dim}, expand_v={expand_v}")
        if head_dim > 256 or head_v_dim > 256:
            raise ValueError(f"the DeltaProduct kernels take head dimensions up to 256, got K={head_dim}, V={int(head_v_dim)}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.d_model, self.n_heads, self.head_dim, self.head_v_dim = d_model, n_heads, head_dim, int(head_v_dim)
        self.n_householder, self.allow_neg_eigval, self.use_forget_gate = n_householder, allow_neg_eigval, use_forget_gate
        self.use_short_conv, self.use_output_gate, self.norm_eps = use_short_conv, use_output_gate, norm_eps
        self.bidirectional, self.backend = bidirectional, backend

        value_dim = n_heads * self.head_v_dim
        core = dict(
            d_model=d_model, n_heads=n_heads, head_k_dim=head_dim, head_v_dim=self.head_v_dim, n_householder=n_householder,
            allow_neg_eigval=allow_neg_eigval, use_forget_gate=use_forget_gate, use_short_conv=use_short_conv,
            conv_size=conv_size, backend=backend,
        )
        self.cores = nn.ModuleList(DeltaCore(**core) for _ in range(2 if bidirectional else 1))
        self.g_proj = nn.Linear(d_model, value_dim, bias=False) if use_output_gate else None
        self.norm_weight = nn.Parameter(torch.ones(self.head_v_dim))  # shared by the heads
        self.o_proj = nn.Linear(value_dim, d_model, bias=False)

    def extra_repr(self) -> str:
        return (
            f"d_model={self.d_model}, n_heads={self.n_heads}, head_dim={self.head_dim}, head_v_dim={self.head_v_dim}, "
            f"n_householder={self.n_householder}, allow_neg_eigval={self.allow_neg_eigval}, "
            f"use_forget_gate={self.use_forget_gate}, bidirectional={self.bidirectional}, backend={self.backend!r}"
        )

    def _output(self, o: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Per-head RMSNorm, optional SiLU gate, output projection: o (.., H, V), x (.., d_model) -> (.., d_model)."""
        o = rms_norm(o, self.norm_weight, self.norm_eps)  # (.. H V) float32
        if self.g_proj is not None:
            o = o * F.silu(self.g_proj(x).float()).unflatten(-1, (self.n_heads, self.head_v_dim))
        return self.o_proj(o.flatten(-2).to(x.dtype))  # (.. d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, L, d_model) real -> (B, L, d_model), same dtype."""
        check_input(x, self.d_model)
        o = self.cores[0](x)  # (B L H V)
        if self.bidirectional:
            # zero (padded) positions leave the zero state unchanged, so the reversed pass over a
            # right-padded sequence starts at the last real token
            o = o + self.cores[1](x.flip(1)).flip(1)
        return self._output(o, x)

    def initial_state(self, batch_size: int) -> dict[str, torch.Tensor]:
        """State before the first token: {"S": (B, H, K, V) float32, "conv": (B, conv_size - 1, channels)}."""
        return self.cores[0].initial_state(batch_size)

    def step(self, x_t: torch.Tensor, state: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One token: x_t (B, d_model) -> (y_t (B, d_model), new state); equals ``forward`` position by position."""
        no_step_when_bidirectional(self)
        check_step_input(x_t, self.d_model)
        want = self.initial_state(x_t.shape[0])
        if not isinstance(state, dict) or state.keys() != want.keys() or any(state[n].shape != want[n].shape for n in want):
            got = {n: tuple(s.shape) for n, s in state.items()} if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"state must be a dict of shapes {{{', '.join(f'{n!r}: {tuple(s.shape)}' for n, s in want.items())}}} (see initial_state), got {got}")
        o_t, state = self.cores[0].step(x_t, state)  # (B H V)
        return self._output(o_t, x_t), state
