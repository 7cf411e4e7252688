"""Diagonal scan and fused S4D: torch and triton vs the naive loops, step functions, long-T stability."""
import numpy as np
import pytest
import scipy.signal
import torch

from kernels import diagonal_scan, diagonal_scan_step, s4d_fft_conv, s4d_fused_scan, s4d_step
from kernels_testlib import DEVICE, assert_all_close, cotangent, grads, needs_triton

FP32_TOL = 2e-5  # relative max error (complex64 / float32); observed <= 3e-6
BF16_TOL = 2e-2  # s4d with bf16 u vs float32 naive on the same rounded u


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _cplx(*shape, g):
    return torch.complex(torch.randn(*shape, generator=g), torch.randn(*shape, generator=g))


def diag_inputs(B, T, N, invariant, init, seed=0):
    g = _gen(seed)
    shape = (N,) if invariant else (B, T, N)
    a = torch.polar(0.45 + 0.5 * torch.rand(*shape, generator=g), 3 * torch.randn(*shape, generator=g))
    b = _cplx(B, T, N, g=g)
    h0 = _cplx(B, N, g=g) if init else None
    return [None if x is None else x.to(DEVICE) for x in (a, b, h0)]


def _run_diag(backend, inputs, chunk):
    a, b, h0 = (None if x is None else x.detach().requires_grad_(True) for x in inputs)
    h = diagonal_scan(a, b, h0, backend=backend, chunk_size=chunk)
    ins = [x for x in (a, b, h0) if x is not None]
    g = list(grads([h], [cotangent(h, 1)], ins))
    return [h] + g + ([None] if h0 is None else [])


DIAG_CASES = [(1, 1, 3), (2, 16, 5), (2, 37, 5), (1, 70, 130)]


@pytest.mark.parametrize("backend", ["torch", pytest.param("triton", marks=needs_triton)])
@pytest.mark.parametrize("invariant", [False, True], ids=["a_BTN", "a_N"])
@pytest.mark.parametrize("case", DIAG_CASES, ids=lambda c: "B{}_T{}_N{}".format(*c))
def test_diagonal_scan_matches_naive(backend, invariant, case):
    inputs = diag_inputs(*case, invariant, init=case[1] != 16)
    ref = _run_diag("naive", inputs, 16)
    out = _run_diag(backend, inputs, 16)
    assert_all_close(out, ref, FP32_TOL, ["h", "da", "db", "dh0"])


def s4d_inputs(B, T, H, N, init, seed=0):
    g = _gen(seed)
    dtA = torch.complex(-0.01 - 0.4 * torch.rand(H, N, generator=g), 2 * torch.randn(H, N, generator=g))
    Bb = _cplx(H, N, g=g)
    C = _cplx(H, N, g=g) * 0.3
    u = torch.randn(B, T, H, generator=g)
    x0 = _cplx(B, H, N, g=g) if init else None
    return [None if x is None else x.to(DEVICE) for x in (u, dtA, Bb, C, x0)]


def _run_s4d(backend, inputs, chunk, dtype=torch.float32):
    u, dtA, Bb, C, x0 = (None if x is None else x.detach() for x in inputs)
    u = u.to(dtype)
    ins = [x.requires_grad_(True) for x in (u, dtA, Bb, C, x0) if x is not None]
    y, xT = s4d_fused_scan(u, dtA, Bb, C, x0, output_final_state=True, backend=backend, chunk_size=chunk)
    g = list(grads([y, xT], [cotangent(y, 1), cotangent(xT, 2)], ins))
    return [y, xT] + g + ([None] if x0 is None else [])


S4D_NAMES = ["y", "x_final", "du", "ddtA", "dB_bar", "dC", "dx0"]
S4D_CASES = [(1, 1, 2, 3, True), (2, 37, 3, 5, True), (1, 40, 2, 20, False)]


@pytest.mark.parametrize("backend", ["torch", pytest.param("triton", marks=needs_triton)])
@pytest.mark.parametrize("case", S4D_CASES, ids=lambda c: "B{}_T{}_H{}_N{}_s{:d}".format(*c))
def test_s4d_matches_naive(backend, case):
    inputs = s4d_inputs(*case)
    ref = _run_s4d("naive", inputs, 16)
    out = _run_s4d(backend, inputs, 16)
    assert_all_close(out, ref, FP32_TOL, S4D_NAMES)


@pytest.mark.parametrize("backend", ["torch", pytest.param("triton", marks=needs_triton)])
def test_s4d_bf16_input(backend):
    inputs = s4d_inputs(2, 37, 3, 5, True, seed=4)
    inputs[0] = inputs[0].to(torch.bfloat16).float()
    ref = _run_s4d("naive", inputs, 16)
    out = _run_s4d(backend, inputs, 16, dtype=torch.bfloat16)
    assert out[0].dtype == torch.bfloat16
    assert_all_close(out, ref, BF16_TOL, S4D_NAMES)


def test_s4d_fft_conv_agrees():
    u, dtA, Bb, C, _ = s4d_inputs(2, 100, 3, 4, False, seed=6)
    y, _ = s4d_fused_scan(u, dtA, Bb, C, backend="torch")
    assert_all_close([s4d_fft_conv(u, dtA, Bb, C)], [y], 1e-4, ["y"])


def test_step_functions_match_chunked():
    a, b, h0 = diag_inputs(2, 23, 4, False, True, seed=8)
    h_ref = diagonal_scan(a, b, h0, backend="torch", chunk_size=16)
    h, hs = h0, []
    for t in range(b.shape[1]):
        h = diagonal_scan_step(a[:, t], b[:, t], h)
        hs.append(h)
    assert_all_close([torch.stack(hs, 1)], [h_ref], FP32_TOL, ["h"])

    u, dtA, Bb, C, x0 = s4d_inputs(2, 23, 3, 4, True, seed=9)
    y_ref, x_ref = s4d_fused_scan(u, dtA, Bb, C, x0, output_final_state=True, backend="torch", chunk_size=16)
    x, ys = x0, []
    for t in range(u.shape[1]):
        y_t, x = s4d_step(u[:, t], dtA, Bb, C, x)
        ys.append(y_t)
    assert_all_close([torch.stack(ys, 1), x], [y_ref, x_ref], FP32_TOL, ["y", "x"])


def test_long_sequence_stable_torch():
    """T = 65536: slow (|a| ~ 1) and fast (|a| = 1e-3, a^64 underflows) decay; float64 lfilter reference."""
    T = 65536
    g = _gen(12)
    a = torch.polar(torch.tensor([0.9999, 0.999, 0.5, 1e-3]), torch.tensor([0.01, 1.0, 2.0, -1.0]))
    b = _cplx(1, T, 4, g=g)
    h = diagonal_scan(a, b, backend="torch")
    assert torch.isfinite(torch.view_as_real(h)).all()
    ref = np.stack([scipy.signal.lfilter([1.0], [1.0, -a[n].numpy().astype(np.complex128)],
                                         b[0, :, n].numpy().astype(np.complex128)) for n in range(4)], -1)
    assert np.abs(h[0].numpy() - ref).max() / np.abs(ref).max() < 1e-4

    H, N = 2, 4
    dtA = torch.complex(torch.tensor([[-1e-4, -1e-3, -0.5, -7.0]] * H), torch.randn(H, N, generator=g))
    Bb, C = _cplx(H, N, g=g), _cplx(H, N, g=g)
    u = torch.randn(1, T, H, generator=g)
    y, xT = s4d_fused_scan(u, dtA, Bb, C, output_final_state=True, backend="torch")
    assert torch.isfinite(y).all() and torch.isfinite(torch.view_as_real(xT)).all()
    lam = torch.exp(dtA.to(torch.complex128)).numpy()
    yr = np.zeros((T, H))
    for hh in range(H):
        for n in range(N):
            x = scipy.signal.lfilter([1.0], [1.0, -lam[hh, n]], Bb[hh, n].numpy() * u[0, :, hh].double().numpy())
            yr[:, hh] += 2 * (C[hh, n].numpy() * x).real
    assert np.abs(y[0].double().numpy() - yr).max() / np.abs(yr).max() < 1e-4
