"""S4D layer: inits, scan vs FFT convolution vs recurrence, causality, bidirectional, gradients, errors."""

from __future__ import annotations

import math

import pytest
import torch

from ssm.s4d import S4D, causal_fft_conv, s4d_eigenvalues

INITS = ["lin", "inv", "legs"]


def pair(**kw):
    """The same S4D weights in scan mode and in FFT mode."""
    torch.manual_seed(0)
    scan = S4D(**kw, mode="scan")
    fft = S4D(**kw, mode="fft")
    fft.load_state_dict(scan.state_dict())
    return scan, fft


def test_shape_and_dtype():
    layer = S4D(d_model=6, d_state=8)
    x = torch.randn(3, 17, 6)
    y = layer(x)
    assert y.shape == (3, 17, 6) and y.dtype == torch.float32
    assert layer(x.double()).dtype == torch.float64


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("discretization", ["zoh", "bilinear"])
@pytest.mark.parametrize("init", INITS)
def test_scan_matches_fft_convolution(init, discretization, bidirectional):
    """The chunked scan (default mode) and the FFT convolution (reference) agree to 1e-4 (float32),
    over a length that is not a multiple of the 64-step chunk."""
    scan, fft = pair(d_model=5, d_state=16, init=init, discretization=discretization, bidirectional=bidirectional)
    x = torch.randn(2, 150, 5)
    y_scan, y_fft = scan(x), fft(x)
    assert torch.allclose(y_scan, y_fft, atol=1e-4, rtol=1e-4), (y_scan - y_fft).abs().max()


def test_scan_and_fft_gradients_agree():
    scan, fft = pair(d_model=4, d_state=8, bidirectional=True)
    x = torch.randn(2, 70, 4)
    w = torch.randn(2, 70, 4)
    (scan(x) * w).sum().backward()
    (fft(x) * w).sum().backward()
    for (name, p), q in zip(scan.named_parameters(), fft.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-3, rtol=1e-3), name


@pytest.mark.parametrize("backend", ["naive", "torch"])
def test_scan_backends_agree(backend):
    torch.manual_seed(0)
    ref = S4D(d_model=3, d_state=8, backend="naive")
    other = S4D(d_model=3, d_state=8, backend=backend)
    other.load_state_dict(ref.state_dict())
    x = torch.randn(2, 40, 3)
    assert torch.allclose(ref(x), other(x), atol=1e-5)


@pytest.mark.parametrize("discretization", ["zoh", "bilinear"])
@pytest.mark.parametrize("init", INITS)
def test_causal(init, discretization):
    torch.manual_seed(0)
    layer = S4D(d_model=4, d_state=8, init=init, discretization=discretization)
    x = torch.randn(2, 30, 4)
    y = layer(x)
    x2 = x.clone()
    x2[:, 12:] += torch.randn_like(x2[:, 12:])
    y2 = layer(x2)
    assert torch.allclose(y[:, :12], y2[:, :12], atol=1e-5)
    assert not torch.allclose(y[:, 12:], y2[:, 12:], atol=1e-3)


def test_bidirectional_sees_the_future():
    torch.manual_seed(0)
    layer = S4D(d_model=4, d_state=8, bidirectional=True)
    x = torch.randn(2, 30, 4)
    x2 = x.clone()
    x2[:, 20:] += 1.0
    assert not torch.allclose(layer(x)[:, :20], layer(x2)[:, :20], atol=1e-4)


@pytest.mark.parametrize("mode", ["scan", "fft"])
def test_matches_recurrence(mode):
    """Both modes equal running x_t = Λ̄ x_{t-1} + B̄ u_t, y_t = 2 Re(C x_t) + D u_t (written here)."""
    torch.manual_seed(0)
    layer = S4D(d_model=3, d_state=6, discretization="bilinear", mode=mode)
    u = torch.randn(2, 25, 3)
    log_lam, B_bar, C, D = layer.ssm_parameters()
    lam = torch.exp(log_lam)
    state = torch.zeros(2, 3, 3, dtype=torch.complex64)
    ys = []
    for t in range(25):
        state = lam * state + B_bar * u[:, t, :, None]  # (B H N2)
        ys.append(2 * (C[0] * state).sum(-1).real + D * u[:, t])
    assert torch.allclose(layer(u), torch.stack(ys, 1), atol=1e-4)


def test_inits():
    N = 16
    lin, inv, legs = (s4d_eigenvalues(N, i) for i in INITS)
    n = torch.arange(N // 2)
    assert torch.allclose(lin.imag, math.pi * n.float())
    assert torch.allclose(inv.imag, (N / math.pi) * (N / (2 * n.float() + 1) - 1))
    for lam in (lin, inv, legs):
        assert lam.shape == (N // 2,) and torch.allclose(lam.real, torch.full((N // 2,), -0.5))
    # LegS: the eigenvalues of the normal part A + P Pᵀ of HiPPO-LegS (one of each conjugate pair)
    from ssm.ptd import hippo_legs

    A, _ = hippo_legs(N)
    A = torch.as_tensor(A, dtype=torch.float64)
    P = torch.sqrt(torch.arange(N, dtype=torch.float64) + 0.5)
    eig = torch.linalg.eigvals(A + P[:, None] * P[None, :])
    upper = eig[eig.imag > 0]
    assert torch.allclose(torch.sort(upper.imag).values, torch.sort(legs.imag.double()).values, atol=1e-4)


def test_gradients_reach_every_parameter():
    layer = S4D(d_model=4, d_state=8, bidirectional=True)
    layer(torch.randn(2, 20, 4)).pow(2).sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_ssm_parameters_are_tagged_for_the_optimizer():
    layer = S4D(d_model=4, d_state=8, lr=1e-3)
    tagged = {n for n, p in layer.named_parameters() if hasattr(p, "_optim")}
    assert tagged == {"log_dt", "log_A_real", "A_imag", "B"}
    assert all(p._optim == {"lr": 1e-3, "weight_decay": 0.0} for n, p in layer.named_parameters() if n in tagged)


def test_fft_conv_is_not_circular():
    u = torch.zeros(1, 1, 8)
    u[..., -1] = 1.0
    k = torch.ones(1, 8)
    assert torch.allclose(causal_fft_conv(u, k), u, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"d_state": 7}, "d_state"),
        ({"init": "foo"}, "init"),
        ({"discretization": "euler"}, "discretization"),
        ({"dt_min": 0.2, "dt_max": 0.1}, "dt_min"),
        ({"mode": "conv"}, "mode"),
        ({"backend": "cuda"}, "backend"),
        ({"mode": "fft", "backend": "torch"}, "mode='scan'"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        S4D(d_model=4, **kwargs)


def test_bad_input_shape():
    with pytest.raises(ValueError, match=r"x must have shape \(batch, length, d_model=4\), got \(2, 10, 5\)"):
        S4D(d_model=4, d_state=8)(torch.randn(2, 10, 5))
