"""Every block rejects bad input clearly and never miscomputes; bf16 at length 65536 stays finite."""

from __future__ import annotations

import pytest
import torch

from ssm import S4D, S4PTD, S5, S5PTD, DeltaProduct

D = 8
BLOCKS = {
    "S4D": lambda: S4D(D, d_state=8),
    "S4PTD": lambda: S4PTD(D, d_state=8),
    "S5": lambda: S5(D, d_state=8, blocks=2),
    "S5PTD": lambda: S5PTD(D, d_state=8, blocks=2),
    "DeltaProduct": lambda: DeltaProduct(D, n_heads=2),
    "DeltaProduct-gate": lambda: DeltaProduct(D, n_heads=2, use_forget_gate=True),
}

BAD_INPUTS = [
    ("rank 2", lambda: torch.randn(3, D), ValueError, r"x must have shape \(batch, length, d_model=8\), got \(3, 8\)"),
    ("rank 4", lambda: torch.randn(2, 3, 4, D), ValueError, r"x must have shape \(batch, length, d_model=8\)"),
    ("wrong d_model", lambda: torch.randn(2, 5, D + 1), ValueError, r"d_model=8\), got \(2, 5, 9\)"),
    ("integer", lambda: torch.randint(0, 3, (2, 5, D)), TypeError, r"real floating tensor, got dtype torch.int64"),
    ("complex", lambda: torch.randn(2, 5, D, dtype=torch.complex64), TypeError, r"real floating tensor, got dtype torch.complex64"),
    ("empty batch", lambda: torch.randn(0, 5, D), ValueError, r"x has batch size 0"),
    ("length 0", lambda: torch.randn(2, 0, D), ValueError, r"x has length 0"),
    ("not a tensor", lambda: [[0.0] * D], TypeError, r"x must be a torch.Tensor"),
]


@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("case,make,error,match", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_rejected_with_a_clear_message(block, case, make, error, match):
    torch.manual_seed(0)
    layer = BLOCKS[block]()
    with pytest.raises(error, match=match):
        layer(make())


@pytest.mark.parametrize("block", BLOCKS)
def test_non_contiguous_input_is_accepted_and_exact(block):
    torch.manual_seed(0)
    layer = BLOCKS[block]()
    x = torch.randn(2, D, 13).transpose(1, 2)  # (2, 13, D), not contiguous
    assert not x.is_contiguous()
    assert torch.equal(layer(x), layer(x.contiguous()))


@pytest.mark.parametrize("block", BLOCKS)
def test_step_rejects_bad_input(block):
    layer = BLOCKS[block]()
    state = layer.initial_state(2)
    with pytest.raises(ValueError, match=r"x_t must have shape \(batch, d_model=8\)"):
        layer.step(torch.randn(2, D + 1), state)
    with pytest.raises(ValueError, match="x_t has batch size 0"):
        layer.step(torch.randn(0, D), state)
    with pytest.raises((ValueError, TypeError), match="state"):
        layer.step(torch.randn(3, D), state)  # state of batch 2 for 3 sequences


# Relative max error of the bf16 run against a float32 run of the same (rounded) parameters and
# input, on the first 4096 positions: it measures the computation, not the rounding of the
# parameters themselves (a bf16-rounded Im Λ of ~10 is a different system).
BF16_TOLERANCE = {"S4D": 0.02, "S4PTD": 0.02, "S5": 0.02, "S5PTD": 0.02, "DeltaProduct": 0.06, "DeltaProduct-gate": 0.06}


@pytest.mark.parametrize("precision", ["bf16 weights", "autocast"])
@pytest.mark.parametrize("block", BLOCKS)
def test_length_65536_in_bf16_is_finite(block, precision):
    torch.manual_seed(0)
    layer = BLOCKS[block]()
    x = torch.randn(1, 65536, D)
    with torch.no_grad():
        if precision == "bf16 weights":
            layer = layer.bfloat16()
            x = x.bfloat16()
            reference = layer.float()(x[:, :4096].float())  # same rounded values, float32 arithmetic
            y = layer.bfloat16()(x)
            assert y.dtype == torch.bfloat16
        else:
            reference = layer(x[:, :4096])
            with torch.autocast("cpu", dtype=torch.bfloat16):
                y = layer(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()
    err = (y[:, :4096].float() - reference).abs().max() / reference.abs().max()
    assert err < BF16_TOLERANCE[block], f"{block} {precision}: relative error {err:.4f}"
