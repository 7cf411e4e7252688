"""S4D layer: shape, causality, bidirectional, gradients, discretisation, errors."""

from __future__ import annotations

import pytest
import torch

from ssm.s4d import S4D, causal_fft_conv


def test_shape_and_dtype():
    layer = S4D(d_model=6, d_state=8)
    x = torch.randn(3, 17, 6)
    assert layer(x).shape == (3, 17, 6)


@pytest.mark.parametrize("discretization", ["zoh", "bilinear"])
@pytest.mark.parametrize("init", ["lin", "inv"])
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


def test_matches_recurrence():
    """The FFT convolution equals running x_t = Λ̄ x_{t-1} + B̄ u_t, y_t = 2 Re(C x_t) + D u_t."""
    torch.manual_seed(0)
    layer = S4D(d_model=3, d_state=6, discretization="bilinear")
    u = torch.randn(2, 25, 3)
    log_lam, B_bar, C, D = layer.ssm_parameters()
    lam = torch.exp(log_lam)
    state = torch.zeros(2, 3, 3, dtype=torch.complex64)
    ys = []
    for t in range(25):
        state = lam * state + B_bar * u[:, t, :, None]  # (B H N2)
        ys.append(2 * (C[0] * state).sum(-1).real + D * u[:, t])
    assert torch.allclose(layer(u), torch.stack(ys, 1), atol=1e-4)


def test_gradients_reach_every_parameter():
    layer = S4D(d_model=4, d_state=8, bidirectional=True)
    layer(torch.randn(2, 20, 4)).pow(2).sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_ssm_parameters_are_tagged_for_the_optimizer():
    layer = S4D(d_model=4, d_state=8, lr=1e-3)
    tagged = {n for n, p in layer.named_parameters() if hasattr(p, "_optim")}
    assert tagged == {"log_dt", "log_A_real", "A_imag", "B"}


def test_fft_conv_is_not_circular():
    u = torch.zeros(1, 1, 8)
    u[..., -1] = 1.0
    k = torch.ones(1, 8)
    assert torch.allclose(causal_fft_conv(u, k), u, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs,match",
    [({"d_state": 7}, "d_state"), ({"init": "foo"}, "init"), ({"discretization": "euler"}, "discretization"), ({"dt_min": 0.2, "dt_max": 0.1}, "dt_min")],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        S4D(d_model=4, **kwargs)


def test_bad_input_shape():
    with pytest.raises(ValueError, match="d_model=4"):
        S4D(d_model=4, d_state=8)(torch.randn(2, 10, 5))
