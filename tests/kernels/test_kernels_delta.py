"""DeltaProduct: torch and triton backends vs the naive loop (outputs, final state, every gradient)."""
import math

import numpy as np
import pytest
import torch

from kernels import delta_product, delta_product_step
from kernels_testlib import DEVICE, assert_all_close, cotangent, delta_inputs, grads, needs_triton

NAMES = ["o", "S", "dq", "dk", "dv", "dbeta", "dlog_gate", "dinitial_state"]
FP32_TOL = 2e-5  # relative max error, float32 inputs (Triton: input_precision="ieee"); observed <= 7e-7
BF16_TOL = 2e-2  # bf16 inputs vs float32 naive on the same rounded inputs (tf32 dots on GPU); observed <= 6e-3


def _run(backend, inputs, chunk_size, dtype=torch.float32):
    q, k, v, beta, log_gate, S0 = inputs
    q, k, v = (x.to(dtype).detach().requires_grad_(True) for x in (q, k, v))
    beta = beta.detach().requires_grad_(True)
    log_gate = None if log_gate is None else log_gate.detach().requires_grad_(True)
    S0 = None if S0 is None else S0.detach().requires_grad_(True)
    o, S = delta_product(q, k, v, beta, log_gate, S0, output_final_state=True, backend=backend, chunk_size=chunk_size)
    ins = [q, k, v, beta, log_gate, S0]
    used = [x for x in ins if x is not None]
    g = iter(grads([o, S], [cotangent(o, 1), cotangent(S, 2)], used))
    return [o, S] + [next(g) if x is not None else None for x in ins]


# (B, T, n_h, H, K, V, log_gate, initial_state)
TORCH_CASES = [
    (1, 1, 1, 1, 16, 16, False, False),
    (2, 1, 2, 3, 8, 5, True, True),
    (2, 37, 1, 3, 20, 12, True, True),
    (1, 50, 2, 3, 48, 48, True, False),
    (2, 33, 3, 3, 20, 12, False, True),
    (1, 21, 3, 2, 16, 24, True, True),
    (1, 17, 4, 3, 12, 8, True, True),
]


@pytest.mark.parametrize("case", TORCH_CASES, ids=lambda c: "B{}_T{}_nh{}_H{}_K{}_V{}_g{:d}_s{:d}".format(*c))
def test_torch_matches_naive(case):
    *dims, gate, init = case
    inputs = delta_inputs(*dims, gate, init)
    ref = _run("naive", inputs, 16)
    out = _run("torch", inputs, 16)
    assert_all_close(out, ref, FP32_TOL, NAMES)


# chunk_size=16 rows: BT=16 tokens per chunk for every n_h, so T=37 spans 3 chunks
TRITON_CASES = [
    (1, 1, 1, 1, 16, 16, False, False),
    (2, 37, 1, 3, 20, 12, True, True),
    (1, 33, 2, 3, 48, 48, True, False),
    (1, 19, 3, 3, 20, 12, True, True),
    (1, 17, 4, 2, 16, 16, True, True),
    (1, 40, 2, 1, 32, 20, False, True),
]


@needs_triton
@pytest.mark.parametrize("case", TRITON_CASES, ids=lambda c: "B{}_T{}_nh{}_H{}_K{}_V{}_g{:d}_s{:d}".format(*c))
def test_triton_matches_naive(case):
    *dims, gate, init = case
    inputs = delta_inputs(*dims, gate, init)
    ref = _run("naive", inputs, 16)
    out = _run("triton", inputs, 16)
    assert_all_close(out, ref, FP32_TOL, NAMES)


@pytest.mark.parametrize("backend", ["torch", pytest.param("triton", marks=needs_triton)])
def test_bf16_against_fp32_reference(backend):
    inputs = delta_inputs(1, 37, 2, 2, 32, 16, True, True, seed=3)
    # round q, k, v to bf16 first; the reference sees the same rounded values in float32
    inputs = [x.to(torch.bfloat16).float() if i < 3 else x for i, x in enumerate(inputs)]
    ref = _run("naive", inputs, 16)
    out = _run(backend, inputs, 16, dtype=torch.bfloat16)
    assert out[0].dtype == torch.bfloat16 and out[1].dtype == torch.float32
    assert_all_close(out, ref, BF16_TOL, NAMES)


def test_default_chunk_size_torch():
    inputs = delta_inputs(1, 150, 2, 2, 16, 16, True, True, seed=5)
    assert_all_close(_run("torch", inputs, 64), _run("naive", inputs, 64), FP32_TOL, NAMES)


@pytest.mark.parametrize("n_h", [1, 3])
def test_step_matches_chunked(n_h):
    q, k, v, beta, g, S0 = delta_inputs(2, 21, n_h, 3, 16, 8, True, True, seed=7)
    o_ref, S_ref = delta_product(q, k, v, beta, g, S0, output_final_state=True, backend="torch", chunk_size=16)
    S = S0
    outs = []
    for t in range(q.shape[1]):
        o_t, S = delta_product_step(q[:, t], k[:, t], v[:, t], beta[:, t], g[:, t], S)
        outs.append(o_t)
    assert_all_close([torch.stack(outs, 1), S], [o_ref, S_ref], FP32_TOL, ["o", "S"])


def test_long_sequence_stable_torch():
    """T = 65536 with strong decay: finite, and equal to a float64 recurrence."""
    T, K, V = 65536, 8, 8
    q, k, v, beta, g, _ = delta_inputs(1, T, 1, 1, K, V, True, False, seed=11, device="cpu", strong_gate=True)
    g[0, T // 2 :, 0] = -1e-4  # second half: nearly no decay, the state must stay bounded (|k| = 1, beta < 2)
    o, S = delta_product(q, k, v, beta, g, output_final_state=True, backend="torch")
    assert torch.isfinite(o).all() and torch.isfinite(S).all()
    qn, kn, vn, bn, gn = (x[0, :, ...].double().numpy() for x in (q, k, v, beta, g))
    Sd = np.zeros((K, V))
    od = np.empty((T, V))
    for t in range(T):
        Sd *= math.exp(gn[t, 0])
        kt = kn[t, 0, 0]
        Sd += bn[t, 0, 0] * np.outer(kt, vn[t, 0, 0] - kt @ Sd)
        od[t] = qn[t, 0] @ Sd
    assert np.abs(o[0, :, 0].double().numpy() - od).max() / np.abs(od).max() < 1e-4
    assert np.abs(S[0, 0].double().numpy() - Sd).max() / np.abs(Sd).max() < 1e-4


def test_noncontiguous_inputs_accepted():
    q, k, v, beta, g, S0 = delta_inputs(2, 9, 2, 3, 8, 8, True, True, seed=2)
    qt = q.transpose(0, 1).contiguous().transpose(0, 1)
    assert not qt.is_contiguous()
    o1, _ = delta_product(qt, k, v, beta, g, S0, backend="torch", chunk_size=16)
    o2, _ = delta_product(q, k, v, beta, g, S0, backend="torch", chunk_size=16)
    assert torch.equal(o1, o2)
