"""SequenceModel.initial_state / step: token-by-token inference through the whole stack equals
the parallel forward on every prefix (eval mode, causal layers)."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from ssm import S4D, S5, DeltaProduct, SequenceModel

LAYERS = {
    "s4d": partial(S4D, d_state=8),
    "s5": partial(S5, d_state=8, blocks=2),
    "deltaproduct": partial(DeltaProduct, n_heads=2),
}


@pytest.fixture(autouse=True)
def one_thread():
    """Small CPU tensors: avoid intra-op thread oversubscription on shared machines."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def make(layer, **kw):
    torch.manual_seed(0)
    args = dict(layer=LAYERS[layer], num_classes=5, d_model=16, n_layers=2, vocab_size=12)
    args.update(kw)
    model = SequenceModel(**args)
    # non-trivial batch-norm statistics, then eval mode
    model.train()
    with torch.no_grad():
        model(torch.randint(1, 12, (4, 30)) if args.get("d_input") is None else torch.randn(4, 30, args["d_input"]))
    return model.eval()


def steps(model, x):
    state = model.initial_state(x.shape[0])
    outs = []
    for t in range(x.shape[1]):
        logits, state = model.step(x[:, t], state)
        outs.append(logits)
    return torch.stack(outs, 1)  # (B L C)


@pytest.mark.parametrize("layer", list(LAYERS))
@pytest.mark.parametrize("norm,prenorm,ffn_ratio", [("batch", False, 0), ("layer", True, 0), ("batch", False, 2), ("layer", True, 1.5)])
def test_token_output_steps_equal_forward(layer, norm, prenorm, ffn_ratio):
    model = make(layer, output="token", norm=norm, prenorm=prenorm, ffn_ratio=ffn_ratio)
    x = torch.randint(1, 12, (3, 25))
    with torch.no_grad():
        assert torch.allclose(steps(model, x), model(x), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("pool", ["mean", "last"])
def test_pooled_output_steps_equal_forward_on_prefixes(pool):
    model = make("s5", pool=pool, vocab_size=None, d_input=3)
    x = torch.randn(2, 12, 3)
    with torch.no_grad():
        y = steps(model, x)
        for t in (0, 5, 11):
            assert torch.allclose(y[:, t], model(x[:, : t + 1]), atol=1e-4, rtol=1e-4)


def test_step_errors():
    model = make("s4d")
    model.train()
    with pytest.raises(RuntimeError, match="eval mode"):
        model.step(torch.randint(1, 12, (2,)), model.initial_state(2))
    model.eval()
    with pytest.raises(ValueError, match=r"x_t must have shape \(B,\) token ids"):
        model.step(torch.randint(1, 12, (2, 3)), model.initial_state(2))
    bidir = SequenceModel(partial(S4D, d_state=8, bidirectional=True), num_classes=5, d_model=16, n_layers=1, vocab_size=12).eval()
    with pytest.raises(RuntimeError, match="bidirectional"):
        bidir.step(torch.randint(1, 12, (2,)), bidir.initial_state(2))
