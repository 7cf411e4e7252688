"""The residual backbone: padding does not leak, pooling, heads, paired documents, errors."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from ssm import S4D, SequenceModel
from ssm.optim import cosine_warmup, param_groups


def make(**kw):
    torch.manual_seed(0)
    args = dict(layer=partial(S4D, d_state=8, bidirectional=True), num_classes=5, d_model=16, n_layers=2, vocab_size=12, norm="layer")
    args.update(kw)
    return SequenceModel(**args).eval()


@pytest.mark.parametrize("pool", ["mean", "last"])
def test_padding_does_not_change_predictions(pool):
    model = make(pool=pool)
    x = torch.randint(1, 12, (1, 20))
    padded = torch.cat([x, torch.zeros(1, 9, dtype=torch.long)], 1)
    mask = padded != 0
    assert torch.allclose(model(x, torch.ones_like(x, dtype=torch.bool)), model(padded, mask), atol=1e-5)


def test_token_output_and_features():
    model = make(output="token", vocab_size=None, d_input=3)
    x = torch.randn(2, 15, 3)
    assert model(x).shape == (2, 15, 5)


def test_dual_documents():
    model = make(dual=True)
    x = torch.randint(1, 12, (3, 2, 10))
    logits = model(x, torch.ones_like(x, dtype=torch.bool))
    assert logits.shape == (3, 5)
    swapped = model(x.flip(1), torch.ones_like(x, dtype=torch.bool))
    assert not torch.allclose(logits, swapped)  # [u, v, u*v, u-v] is ordered


def test_input_errors_name_the_problem():
    model = make()
    with pytest.raises(ValueError, match=r"\(B, L\)"):
        model(torch.randint(1, 12, (2, 3, 4)))
    with pytest.raises(ValueError, match="mask"):
        model(torch.randint(1, 12, (2, 5)), torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="integer token ids"):
        model(torch.randn(2, 5))
    with pytest.raises(ValueError, match="exactly one of vocab_size"):
        make(d_input=3)


def test_param_groups_and_schedule():
    model = make()
    groups = param_groups(model)
    marked = [g for g in groups if "lr" in g]
    assert marked and all(g["weight_decay"] == 0.0 and g["lr"] == 1e-3 for g in marked)
    n = sum(p.numel() for g in groups for p in g["params"])
    assert n == sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(groups, lr=0.01, weight_decay=0.05)
    sched = cosine_warmup(opt, total_steps=100, warmup_steps=10)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.001) and max(lrs) == pytest.approx(0.01) and lrs[-1] < 1e-4


@pytest.mark.parametrize("prenorm", [True, False])
def test_feed_forward_branch_is_a_swiglu_residual(prenorm):
    """ffn_ratio > 0: each block ends with x + W_down(silu(W_gate n(x)) * W_up n(x)) (pre-norm) or
    n(x + W_down(silu(W_gate x) * W_up x)) (post-norm), with round(ffn_ratio * d_model) hidden units."""
    model = make(ffn_ratio=1.5, prenorm=prenorm, n_layers=1)
    block = model.blocks[0]
    assert block.ffn.down.in_features == 24 and block.ffn.up.out_features == 48
    x = torch.randn(2, 7, 16)
    mask = torch.ones(2, 7, dtype=torch.bool)
    with torch.no_grad():
        ffn, norm = block.ffn, block.ffn_norm
        block.ffn = None  # the sequence-layer branch alone
        h = block(x, mask)
        block.ffn = ffn
        u = norm(h) if prenorm else h
        w_gate, w_up = ffn.up.weight[:24], ffn.up.weight[24:]
        branch = (torch.nn.functional.silu(u @ w_gate.T) * (u @ w_up.T)) @ ffn.down.weight.T
        want = h + branch if prenorm else norm(h + branch)
        assert torch.allclose(block(x, mask), want, atol=1e-5)
    assert make(ffn_ratio=0).blocks[0].ffn is None
    n_plain = sum(p.numel() for p in make().parameters())
    n_ffn = sum(p.numel() for p in make(ffn_ratio=2).parameters())
    assert n_ffn - n_plain == 2 * (3 * 16 * 32 + 2 * 16)  # per block: W_gate, W_up, W_down and the norm's affine


@pytest.mark.parametrize("bad", [-1, "4", True, float("nan")])
def test_feed_forward_ratio_errors(bad):
    with pytest.raises(ValueError, match=r"ffn_ratio must be a number >= 0 .*got"):
        make(ffn_ratio=bad)
    with pytest.raises(ValueError, match="at least one hidden unit"):
        make(ffn_ratio=0.01)
