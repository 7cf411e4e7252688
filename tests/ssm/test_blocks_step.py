"""Every block: recurrent inference (step) equals the parallel forward, bidirectional layers refuse
to step, shape errors, gradients, and a few seconds of training on a small recall task."""

from __future__ import annotations

from functools import partial

import os

import pytest
import torch
import torch.nn.functional as F

from ssm import S4D, S4PTD, S5, S5PTD, DeltaProduct, SequenceModel

D = 8
# Causal configurations of every block and option that changes the recurrence.
CAUSAL = {
    "s4d-legs-zoh": partial(S4D, d_state=8),
    "s4d-lin-bilinear": partial(S4D, d_state=8, init="lin", discretization="bilinear"),
    "s4d-inv-fft": partial(S4D, d_state=8, init="inv", mode="fft"),
    "s4d-naive": partial(S4D, d_state=8, backend="naive"),
    "s4ptd": partial(S4PTD, d_state=8),
    "s4ptd-bilinear-fft": partial(S4PTD, d_state=8, discretization="bilinear", mode="fft"),
    "s5": partial(S5, d_state=8),
    "s5-blocks": partial(S5, d_state=16, blocks=4),
    "s5-noconj-bilinear": partial(S5, d_state=8, conj_sym=False, discretization="bilinear"),
    "s5ptd": partial(S5PTD, d_state=8, blocks=2),
    "deltaproduct": partial(DeltaProduct, n_heads=2),
    "deltanet": partial(DeltaProduct, n_heads=2, n_householder=1, allow_neg_eigval=False),
    "deltaproduct-gate-noconv": partial(DeltaProduct, n_heads=2, n_householder=3, use_forget_gate=True, use_short_conv=False),
    "deltaproduct-nooutgate-expand": partial(DeltaProduct, n_heads=2, use_output_gate=False, expand_v=2.0),
}
# Small instances of each block (the N = 64 PTD optimisation is slow on a cold cache).
BLOCKS = {
    "S4D": partial(S4D, d_state=8),
    "S4PTD": partial(S4PTD, d_state=8),
    "S5": partial(S5, d_state=8),
    "S5PTD": partial(S5PTD, d_state=8),
    "DeltaProduct": partial(DeltaProduct, n_heads=2),
}


@pytest.fixture(autouse=True)
def one_thread():
    """These tensors are tiny: intra-op threads only add overhead, and on a loaded machine
    batched small linear algebra (the chunked DeltaProduct's triangular solves) slows down
    a hundredfold with two threads."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def run_steps(layer, x):
    state = layer.initial_state(x.shape[0])
    ys = []
    for t in range(x.shape[1]):
        y_t, state = layer.step(x[:, t], state)
        ys.append(y_t)
    return torch.stack(ys, 1)


@pytest.mark.parametrize("name", list(CAUSAL))
def test_step_equals_parallel(name):
    """Tolerance: 1e-4 absolute and relative (float32; the chunked scans reorder the sums)."""
    torch.manual_seed(0)
    layer = CAUSAL[name](d_model=D)
    x = torch.randn(2, 70, D)  # longer than one 64-step chunk
    with torch.no_grad():
        y, y_steps = layer(x), run_steps(layer, x)
    assert torch.allclose(y_steps, y, atol=1e-4, rtol=1e-4), (y_steps - y).abs().max()


@pytest.mark.skipif(not torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1", reason="needs CUDA or the Triton interpreter")
@pytest.mark.parametrize(
    "make,length",
    [(partial(S4D, d_state=8, bidirectional=True), 70), (partial(S5, d_state=8), 40), (partial(DeltaProduct, n_heads=2, use_forget_gate=True), 36)],
    ids=["S4D-bidirectional", "S5", "DeltaProduct-gate"],
)
def test_triton_backend_matches_torch(make, length):
    """The blocks on the Triton kernels (interpreted on CPU) agree with the PyTorch chunked path:
    outputs and every parameter gradient."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    ref = make(d_model=D, backend="torch").to(device)
    tri = make(d_model=D, backend="triton").to(device)
    tri.load_state_dict(ref.state_dict())
    x = torch.randn(2, length, D, device=device)
    y_ref, y_tri = ref(x), tri(x)
    assert torch.allclose(y_tri, y_ref, atol=1e-4, rtol=1e-4)
    w = torch.randn_like(y_ref)
    (y_ref * w).sum().backward()
    (y_tri * w).sum().backward()
    for (name, p), q in zip(ref.named_parameters(), tri.parameters()):
        assert torch.allclose(q.grad, p.grad, atol=1e-3, rtol=1e-3), name


@pytest.mark.parametrize("cls", list(BLOCKS.values()), ids=list(BLOCKS))
def test_bidirectional_step_raises(cls):
    layer = cls(d_model=D, bidirectional=True)
    with pytest.raises(RuntimeError, match="bidirectional"):
        layer.step(torch.randn(2, D), layer.initial_state(2))


@pytest.mark.parametrize("cls", list(BLOCKS.values()), ids=list(BLOCKS))
def test_bidirectional_is_anticausal_too(cls):
    """The second (reversed) scan makes early outputs depend on late inputs."""
    torch.manual_seed(0)
    layer = cls(d_model=D, bidirectional=True)
    x = torch.randn(2, 30, D)
    x2 = x.clone()
    x2[:, 20:] += 1.0
    with torch.no_grad():
        assert not torch.allclose(layer(x)[:, :20], layer(x2)[:, :20], atol=1e-4)


@pytest.mark.parametrize("cls", list(BLOCKS.values()), ids=list(BLOCKS))
def test_shape_errors_name_the_argument(cls):
    layer = cls(d_model=D)
    with pytest.raises(ValueError, match=rf"x must have shape \(batch, length, d_model={D}\), got \(2, 5, {D + 1}\)"):
        layer(torch.randn(2, 5, D + 1))
    with pytest.raises(ValueError, match=r"x has length 0"):
        layer(torch.randn(2, 0, D))
    with pytest.raises(ValueError, match=rf"x_t must have shape \(batch, d_model={D}\), got \(2, 3, {D}\)"):
        layer.step(torch.randn(2, 3, D), layer.initial_state(2))
    with pytest.raises(ValueError, match="state must be"):
        layer.step(torch.randn(3, D), layer.initial_state(2))


@pytest.mark.parametrize("cls", list(BLOCKS.values()), ids=list(BLOCKS))
def test_gradients_reach_every_parameter(cls):
    torch.manual_seed(0)
    layer = cls(d_model=D, bidirectional=True)
    layer(torch.randn(2, 20, D)).pow(2).sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def recall_batch(generator, batch=16, length=16, vocab=6, delay=2):
    """Delayed copy: the target at position t is the token at t - delay (-100 before that)."""
    x = torch.randint(1, vocab, (batch, length), generator=generator)
    y = torch.full_like(x, -100)
    y[:, delay:] = x[:, :-delay]
    return x, y


@pytest.mark.parametrize("name", ["S4D", "S4PTD", "S5", "S5PTD", "DeltaProduct"])
def test_trains_on_delayed_copy(name):
    """A 2-layer model of each block learns a delayed copy on CPU in 40 Adam steps (a few seconds):
    the loss at least halves (it starts near ln 5)."""
    torch.manual_seed(0)
    layer = {
        "S4D": partial(S4D, d_state=16, dt_min=0.1, dt_max=1.0),
        "S4PTD": partial(S4PTD, d_state=16, dt_min=0.1, dt_max=1.0),
        "S5": partial(S5, d_state=16, blocks=2, dt_min=0.1, dt_max=1.0),
        "S5PTD": partial(S5PTD, d_state=16, blocks=2, dt_min=0.1, dt_max=1.0),
        "DeltaProduct": partial(DeltaProduct, n_heads=2),
    }[name]
    model = SequenceModel(layer, num_classes=6, d_model=32, n_layers=2, vocab_size=6, output="token", norm="layer", prenorm=True)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(40):
        x, y = recall_batch(g)
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten(), ignore_index=-100)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    start, end = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert end < 0.5 * start, (start, end)
