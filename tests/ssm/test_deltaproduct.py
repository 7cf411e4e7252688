"""DeltaProduct layer: a plain loop written here (projections -> per-token Householder updates),
options, zero-input invariance, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ssm import DeltaProduct


def loop_core(layer: DeltaProduct, core, x: torch.Tensor) -> torch.Tensor:
    """One direction, token by token in float64: per-head outputs (B, L, H, V)."""
    H, K, V, n_h = layer.n_heads, layer.head_dim, layer.head_v_dim, layer.n_householder
    Bsz, L, _ = x.shape
    x = x.double()
    W = lambda lin: lin.weight.detach().double()  # noqa: E731
    qkv = torch.cat([x @ W(core.q_proj).T, x @ W(core.k_proj).T, x @ W(core.v_proj).T], -1)  # (B L C)
    if layer.use_short_conv:
        w = core.conv.weight.detach().double()  # (C W)
        width = w.shape[1]
        conv = torch.zeros_like(qkv)
        for t in range(L):
            for j in range(width):  # tap j reads position t - (width - 1) + j
                s = t - (width - 1) + j
                if s >= 0:
                    conv[:, t] += w[:, j] * qkv[:, s]
        qkv = conv
    qkv = F.silu(qkv)
    q, k, v = qkv.split([H * K, n_h * H * K, n_h * H * V], -1)
    beta = torch.sigmoid(x @ W(core.b_proj).T) * (2 if layer.allow_neg_eigval else 1)  # (B L n_h*H)
    if layer.use_forget_gate:
        g = -torch.exp(core.A_log.detach().double()) * F.softplus(x @ W(core.a_proj).T + core.dt_bias.detach().double())
    S = torch.zeros(Bsz, H, K, V, dtype=torch.float64)
    out = torch.zeros(Bsz, L, H, V, dtype=torch.float64)
    for b in range(Bsz):
        for t in range(L):
            for h in range(H):
                if layer.use_forget_gate:
                    S[b, h] = torch.exp(g[b, t, h]) * S[b, h]
                for j in range(n_h):
                    kk = k[b, t, (j * H + h) * K : (j * H + h + 1) * K]
                    kk = kk / kk.norm().clamp_min(1e-12)
                    vv = v[b, t, (j * H + h) * V : (j * H + h + 1) * V]
                    bb = beta[b, t, j * H + h]
                    # generalised Householder step: S <- (I - β k kᵀ) S + β k vᵀ
                    S[b, h] = (torch.eye(K, dtype=torch.float64) - bb * torch.outer(kk, kk)) @ S[b, h] + bb * torch.outer(kk, vv)
                qq = q[b, t, h * K : (h + 1) * K]
                out[b, t, h] = S[b, h].T @ (qq / qq.norm().clamp_min(1e-12))
        S.zero_()
    return out


def loop_layer(layer: DeltaProduct, x: torch.Tensor) -> torch.Tensor:
    o = loop_core(layer, layer.cores[0], x)
    if layer.bidirectional:
        o = o + loop_core(layer, layer.cores[1], x.flip(1)).flip(1)
    o = o / torch.sqrt(o.pow(2).mean(-1, keepdim=True) + layer.norm_eps) * layer.norm_weight.detach().double()
    if layer.use_output_gate:
        o = o * F.silu(x.double() @ layer.g_proj.weight.detach().double().T).unflatten(-1, (layer.n_heads, layer.head_v_dim))
    return (o.flatten(-2) @ layer.o_proj.weight.detach().double().T).float()


OPTIONS = [
    dict(),
    dict(n_householder=1),
    dict(n_householder=3, allow_neg_eigval=False),
    dict(use_forget_gate=True),
    dict(use_short_conv=False, use_output_gate=False),
    dict(expand_v=2.0, n_heads=2),
    dict(bidirectional=True, use_forget_gate=True),
]
IDS = ["default", "deltanet", "nh3-pos", "gate", "noconv-nogate", "expand_v2", "bidirectional"]


@pytest.mark.parametrize("kw", OPTIONS, ids=IDS)
def test_matches_plain_loop(kw):
    torch.manual_seed(0)
    layer = DeltaProduct(d_model=12, **{"n_heads": 3, **kw})
    x = torch.randn(2, 21, 12)
    y = layer(x)
    ref = loop_layer(layer, x)
    assert torch.allclose(y, ref, atol=1e-4, rtol=1e-4), (y - ref).abs().max()


@pytest.mark.parametrize("allow_neg_eigval", [True, False])
def test_beta_range(allow_neg_eigval):
    torch.manual_seed(0)
    layer = DeltaProduct(d_model=8, n_heads=2, allow_neg_eigval=allow_neg_eigval)
    with torch.no_grad():
        layer.cores[0].b_proj.weight.mul_(100)  # saturate the sigmoid
    *_, beta, _, _ = layer.cores[0].features(torch.randn(4, 50, 8))
    hi = 2.0 if allow_neg_eigval else 1.0
    assert beta.min() >= 0 and beta.max() <= hi and beta.max() > 0.99 * hi


def test_zero_input_leaves_state_unchanged():
    """Bias-free projections: once the short-convolution window holds only zeros, zero inputs
    (padding) neither change the state nor produce output.  This is what lets a reversed scan
    over a right-padded sequence start at the last real token with a zero state."""
    torch.manual_seed(0)
    layer = DeltaProduct(d_model=8, n_heads=2)
    x = torch.randn(1, 10, 8)
    state = layer.initial_state(1)
    for t in range(10):
        _, state = layer.step(x[:, t], state)
    for _ in range(layer.cores[0].conv.kernel_size - 1):  # flush the convolution window
        _, state = layer.step(torch.zeros(1, 8), state)
    S = state["S"].clone()
    for _ in range(5):
        y, state = layer.step(torch.zeros(1, 8), state)
        assert torch.equal(state["S"], S) and torch.equal(y, torch.zeros_like(y))
    # and a zero prefix keeps the zero state of a fresh sequence
    padded = torch.cat([torch.zeros(1, 7, 8), x], 1)
    assert torch.allclose(layer(padded)[:, 7:], layer(x), atol=1e-5)


def test_gate_and_dt_bias_get_no_weight_decay():
    layer = DeltaProduct(d_model=8, n_heads=2, use_forget_gate=True)
    tagged = {n: p._optim for n, p in layer.named_parameters() if hasattr(p, "_optim")}
    assert tagged == {"cores.0.A_log": {"weight_decay": 0.0}, "cores.0.dt_bias": {"weight_decay": 0.0}}


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    layer = DeltaProduct(d_model=8, n_heads=2, use_forget_gate=True, bidirectional=True)
    layer(torch.randn(2, 20, 8)).pow(2).sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"n_heads": 3}, "divisible by n_heads"),
        ({"n_householder": 0}, "n_householder"),
        ({"head_dim": 4, "expand_v": 0.3}, "expand_v"),
        ({"head_dim": 512}, "256"),
        ({"backend": "cuda"}, "backend"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DeltaProduct(d_model=8, **kwargs)


def test_bad_shapes():
    layer = DeltaProduct(d_model=8, n_heads=2)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, length, d_model=8\), got \(2, 5, 7\)"):
        layer(torch.randn(2, 5, 7))
    with pytest.raises(ValueError, match=r"x_t must have shape \(batch, d_model=8\), got \(2, 1, 8\)"):
        layer.step(torch.randn(2, 1, 8), layer.initial_state(2))
    with pytest.raises(ValueError, match="state must be a dict"):
        layer.step(torch.randn(3, 8), layer.initial_state(2))
