"""S5 layer: a plain loop written here, initialisation (HiPPO-N, blocks, conjugate symmetry), errors."""

from __future__ import annotations

import math

import pytest
import torch

from ssm import S5


def loop_s5(layer: S5, u: torch.Tensor) -> torch.Tensor:
    """The S5 recurrence from its continuous parameters, one token at a time, in complex128.

    x_t = Λ̄ x_{t-1} + B̄ u_t,  y_t = Re(C̃ x_t) (·2 with conjugate symmetry) + D u_t; the
    bidirectional layer adds the same recurrence run backwards with the second C̃.
    """
    Lam = layer.Lambda.detach().to(torch.complex128)  # (P)
    dt = torch.exp(layer.log_dt.detach()).double()  # (P)
    Bt = torch.view_as_complex(layer.B.detach()).to(torch.complex128)  # (P H)
    Ct = torch.view_as_complex(layer.C.detach()).to(torch.complex128)  # (c H P)
    if layer.discretization == "zoh":
        lam_bar = torch.exp(dt * Lam)
        B_bar = ((lam_bar - 1) / Lam)[:, None] * Bt
    else:
        lam_bar = (1 + dt * Lam / 2) / (1 - dt * Lam / 2)
        B_bar = (dt / (1 - dt * Lam / 2))[:, None] * Bt
    scale = 2.0 if layer.conj_sym else 1.0
    u = u.double()
    Bsz, L, _ = u.shape

    def run(seq, C):
        x = torch.zeros(Bsz, Lam.shape[0], dtype=torch.complex128)
        ys = []
        for t in range(L):
            x = lam_bar * x + seq[:, t].to(torch.complex128) @ B_bar.T
            ys.append(scale * (x @ C.T).real)
        return torch.stack(ys, 1)

    y = run(u, Ct[0])
    if layer.bidirectional:
        y = y + run(u.flip(1), Ct[1]).flip(1)
    return (y + layer.D.detach().double() * u).float()


@pytest.mark.parametrize(
    "kw",
    [
        dict(d_state=16, blocks=1),
        dict(d_state=16, blocks=4),
        dict(d_state=12, blocks=2, conj_sym=False),
        dict(d_state=8, discretization="bilinear"),
        dict(d_state=16, blocks=2, bidirectional=True),
    ],
    ids=["P16J1", "P16J4", "P12J2-noconj", "bilinear", "bidirectional"],
)
def test_matches_plain_loop(kw):
    torch.manual_seed(0)
    layer = S5(d_model=5, **kw)
    x = torch.randn(2, 90, 5)
    assert torch.allclose(layer(x), loop_s5(layer, x), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("backend", ["naive", "torch"])
def test_backends_agree(backend):
    torch.manual_seed(0)
    ref = S5(d_model=4, d_state=8, backend="naive")
    other = S5(d_model=4, d_state=8, backend=backend)
    other.load_state_dict(ref.state_dict())
    x = torch.randn(2, 70, 4)
    assert torch.allclose(ref(x), other(x), atol=1e-5)


def test_hippo_n_init_block_diagonal():
    """Λ: J copies of the P/J HiPPO-N eigenvalues (real part -1/2), one per conjugate pair."""
    P, J = 16, 4
    layer = S5(d_model=3, d_state=P, blocks=J)
    lam = layer.Lambda.detach()
    assert lam.shape == (P // 2,)
    assert torch.allclose(lam.real, torch.full_like(lam.real, -0.5))
    assert (lam.imag > 0).all()
    block = lam[: P // J // 2]
    assert torch.allclose(lam, block.repeat(J))
    # the block's eigenvalues are those of the normal part of the P/J HiPPO-LegS matrix
    from ssm.ptd import hippo_legs

    n = P // J
    A, _ = hippo_legs(n)
    A = torch.as_tensor(A, dtype=torch.float64)
    p = torch.sqrt(torch.arange(n, dtype=torch.float64) + 0.5)
    eig = torch.linalg.eigvals(A + p[:, None] * p[None, :])
    assert torch.allclose(torch.sort(eig.imag[eig.imag > 0]).values, torch.sort(block.imag.double()).values, atol=1e-4)
    assert layer.log_dt.shape == (P // 2,)  # one Δ per state
    assert torch.view_as_complex(layer.B).shape == (P // 2, 3) and torch.view_as_complex(layer.C).shape == (1, 3, P // 2)


def test_block_diagonal_B_tilde_mixes_only_within_blocks():
    """B̃ = V⁻¹B with V block-diagonal: a block's states are driven by its own rows of B only."""
    from ssm import inits

    d = inits.block_diagonal(inits.hippo_n(4), 3)
    assert d.V.shape == (12, 6) and d.Vinv.shape == (6, 12)
    assert torch.count_nonzero(d.V[:4, 2:]) == 0 and torch.count_nonzero(d.Vinv[:2, 4:]) == 0
    # V⁻¹ V = I on the kept states
    assert torch.allclose(d.Vinv @ d.V, torch.eye(6, dtype=d.V.dtype), atol=1e-10)


def test_ssm_parameters_tagged_and_gradients():
    layer = S5(d_model=4, d_state=8, bidirectional=True, lr=2e-3)
    tagged = {n for n, p in layer.named_parameters() if hasattr(p, "_optim")}
    assert tagged == {"log_Lambda_real", "Lambda_imag", "log_dt", "B"}
    layer(torch.randn(2, 20, 4)).pow(2).sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"d_state": 16, "blocks": 3}, "blocks"),
        ({"d_state": 12, "blocks": 4}, "conj_sym"),
        ({"discretization": "euler"}, "discretization"),
        ({"dt_min": 1.0, "dt_max": 0.1}, "dt_min"),
        ({"backend": "jax"}, "backend"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        S5(d_model=4, **kwargs)


def test_bad_input_shape():
    with pytest.raises(ValueError, match=r"x must have shape \(batch, length, d_model=4\), got \(2, 4\)"):
        S5(d_model=4, d_state=8)(torch.randn(2, 4))
    assert math.isfinite(S5(d_model=4, d_state=8)(torch.randn(1, 1, 4)).sum().item())
