"""Public entry points of the kernels package (validated, backend-dispatching)."""
from __future__ import annotations

from typing import Optional, Tuple

import torch

from . import chunked, naive
from .validate import (
    check_delta_inputs,
    check_diag_inputs,
    check_dims,
    check_s4d_inputs,
    check_tensor,
    resolve_backend,
)


def _contig(*xs):
    return tuple(None if x is None else x.contiguous() for x in xs)


def delta_product(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    beta: torch.Tensor,
    log_gate: Optional[torch.Tensor] = None,
    initial_state: Optional[torch.Tensor] = None,
    output_final_state: bool = False,
    backend: str = "auto",
    chunk_size: int = 64,
) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Gated DeltaProduct (DeltaNet for ``n_h = 1``) over a whole sequence.

    Per token t, with state S in R^{K x V} per (batch, head)::

        S <- exp(log_gate[t]) * S                      (if log_gate is given)
        for j in 0..n_h-1:  S <- S + beta[t,j] k[t,j] (v[t,j] - S^T k[t,j])^T
        o[t] = S^T q[t]

    No normalisation or scaling happens inside (normalise keys yourself;
    ``beta`` in (0, 2) allows negative eigenvalues).

    Args:
        q: ``[B, T, H, K]`` queries.
        k: ``[B, T, n_h, H, K]`` keys, one per Householder sub-step.
        v: ``[B, T, n_h, H, V]`` values.
        beta: ``[B, T, n_h, H]`` step sizes, any real float dtype.
        log_gate: ``[B, T, H]`` log forget gate (<= 0), or None (no gate).
        initial_state: ``[B, H, K, V]`` state before token 0, or None (zeros).
        output_final_state: also return the state after the last token.
        backend: "auto" (triton on CUDA, torch otherwise), "naive", "torch" or "triton".
        chunk_size: interleaved rows per chunk (torch/triton); tokens per chunk
            are ``max(16, prev_pow2(chunk_size // n_h))``.

    Dtypes: q, k, v share one dtype (float32, bfloat16 or float16); all
    arithmetic, the state and accumulation are float32.  Returns
    ``o [B, T, H, V]`` in v's dtype and ``S [B, H, K, V]`` float32 (None
    unless ``output_final_state``).  K, V <= 256.

    Example::

        >>> import torch
        >>> from kernels import delta_product
        >>> B, T, n_h, H, K, V = 2, 10, 2, 3, 16, 8
        >>> q = torch.randn(B, T, H, K)
        >>> k = torch.nn.functional.normalize(torch.randn(B, T, n_h, H, K), dim=-1)
        >>> v = torch.randn(B, T, n_h, H, V)
        >>> beta = torch.rand(B, T, n_h, H) * 2
        >>> o, S = delta_product(q, k, v, beta, output_final_state=True, backend="torch")
        >>> o.shape, S.shape
        (torch.Size([2, 10, 3, 8]), torch.Size([2, 3, 16, 8]))
    """
    check_delta_inputs(q, k, v, beta, log_gate, initial_state)
    be = resolve_backend("delta_product", backend, q.device)
    q, k, v, beta, log_gate, initial_state = _contig(q, k, v, beta, log_gate, initial_state)
    if be == "naive":
        return naive.delta_product_naive(q, k, v, beta, log_gate, initial_state, output_final_state)
    if be == "torch":
        return chunked.delta_product_chunked(q, k, v, beta, log_gate, initial_state, output_final_state, chunk_size)
    from .ops import delta_product_triton

    return delta_product_triton(q, k, v, beta, log_gate, initial_state, output_final_state, chunk_size)


def diagonal_scan(
    a: torch.Tensor,
    b: torch.Tensor,
    initial_state: Optional[torch.Tensor] = None,
    backend: str = "auto",
    chunk_size: int = 64,
) -> torch.Tensor:
    """Complex diagonal linear recurrence ``h[t] = a[t] * h[t-1] + b[t]`` (elementwise over N).

    Args:
        a: ``[N]`` (time-invariant, e.g. S5 / S4D ``exp(dt * Lambda)``) or ``[B, T, N]``, complex64.
        b: ``[B, T, N]`` complex64 inputs.
        initial_state: ``[B, N]`` complex64 ``h[-1]``, or None (zeros).
        backend: "auto", "naive", "torch" or "triton".
        chunk_size: time steps per chunk (torch/triton).

    Returns ``h [B, T, N]`` complex64: every state.  Powers of ``a`` are only
    formed by multiplication inside a chunk (no division), so strongly
    decaying ``a`` underflows harmlessly to 0.

    Example::

        >>> import torch
        >>> from kernels import diagonal_scan
        >>> a = torch.polar(torch.full((4,), 0.9), torch.linspace(0, 1, 4))
        >>> b = torch.randn(2, 7, 4, dtype=torch.complex64)
        >>> diagonal_scan(a, b, backend="torch").shape
        torch.Size([2, 7, 4])
    """
    check_diag_inputs(a, b, initial_state)
    be = resolve_backend("diagonal_scan", backend, b.device)
    a, b, initial_state = _contig(a, b, initial_state)
    if be == "naive":
        return naive.diagonal_scan_naive(a, b, initial_state)
    if be == "torch":
        return chunked.diagonal_scan_chunked(a, b, initial_state, chunk_size)
    from .ops import diagonal_scan_triton

    return diagonal_scan_triton(a, b, initial_state, chunk_size)


def s4d_fused_scan(
    u: torch.Tensor,
    dtA: torch.Tensor,
    B_bar: torch.Tensor,
    C: torch.Tensor,
    initial_state: Optional[torch.Tensor] = None,
    output_final_state: bool = False,
    backend: str = "auto",
    chunk_size: int = 64,
) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Fused diagonal S4D layer core: never materialises ``[B, T, H, N]``.

    With ``Lambda_bar = exp(dtA)`` (powers formed as ``exp(l * dtA)``)::

        x[t] = Lambda_bar * x[t-1] + B_bar * u[t]        (per channel h, state n)
        y[t] = 2 * Re(sum_n C[h, n] * x[t][h, n])

    Args:
        u: ``[B, T, H]`` real input (float32 / bfloat16 / float16).
        dtA: ``[H, N]`` complex64, ``dt * Lambda`` (Re < 0 for a stable system).
        B_bar: ``[H, N]`` complex64 discretised input matrix.
        C: ``[H, N]`` complex64 output matrix (the factor 2 and Re are applied here).
        initial_state: ``[B, H, N]`` complex64 ``x[-1]``, or None (zeros).
        output_final_state: also return ``x[T-1]``.
        backend: "auto", "naive", "torch" or "triton".
        chunk_size: time steps per chunk (torch/triton; triton needs a power of two >= 16).

    Returns ``y [B, T, H]`` in u's dtype (float32 accumulation) and the final
    state ``[B, H, N]`` complex64 or None.  Gradients flow to u, dtA, B_bar, C
    and initial_state.  Peak activation memory O(B T H + B (T/chunk) H N).

    Example::

        >>> import torch
        >>> from kernels import s4d_fused_scan
        >>> H, N = 3, 4
        >>> dtA = torch.complex(-0.5 * torch.rand(H, N), torch.randn(H, N))
        >>> Bb = torch.randn(H, N, dtype=torch.complex64)
        >>> C = torch.randn(H, N, dtype=torch.complex64)
        >>> y, x = s4d_fused_scan(torch.randn(2, 9, H), dtA, Bb, C, output_final_state=True, backend="torch")
        >>> y.shape, x.shape
        (torch.Size([2, 9, 3]), torch.Size([2, 3, 4]))
    """
    check_s4d_inputs(u, dtA, B_bar, C, initial_state)
    be = resolve_backend("s4d_fused_scan", backend, u.device)
    u, dtA, B_bar, C, initial_state = _contig(u, dtA, B_bar, C, initial_state)
    if be == "naive":
        return naive.s4d_fused_scan_naive(u, dtA, B_bar, C, initial_state, output_final_state)
    if be == "torch":
        return chunked.s4d_fused_scan_chunked(u, dtA, B_bar, C, initial_state, output_final_state, chunk_size)
    from .ops import s4d_fused_scan_triton

    return s4d_fused_scan_triton(u, dtA, B_bar, C, initial_state, output_final_state, chunk_size)


# --------------------------------------------------------------------------- recurrent steps
def delta_product_step(q_t, k_t, v_t, beta_t, log_gate_t, state):
    """One recurrent DeltaProduct step for inference.

    q_t ``[B, H, K]``, k_t ``[B, n_h, H, K]``, v_t ``[B, n_h, H, V]``,
    beta_t ``[B, n_h, H]``, log_gate_t ``[B, H]`` or None, state ``[B, H, K, V]``
    (float32; None means zeros).  Returns ``(o_t [B, H, V] in v_t's dtype,
    new state [B, H, K, V] float32)``; agrees with ``delta_product`` token by token.
    """
    op = "delta_product_step"
    check_tensor(op, "q_t", q_t, "[B, H, K]", 3, kind="real")
    B, H, K = q_t.shape
    check_tensor(op, "k_t", k_t, "[B, n_h, H, K]", 4, kind="real")
    n_h = k_t.shape[1]
    check_dims(op, "k_t", k_t, "[B, n_h, H, K]", [B, None, H, K], ["B", "n_h", "H", "K"])
    check_tensor(op, "v_t", v_t, "[B, n_h, H, V]", 4, kind="real")
    V = v_t.shape[-1]
    check_dims(op, "v_t", v_t, "[B, n_h, H, V]", [B, n_h, H, None], ["B", "n_h", "H", "V"])
    check_tensor(op, "beta_t", beta_t, "[B, n_h, H]", 3, kind="real")
    check_dims(op, "beta_t", beta_t, "[B, n_h, H]", [B, n_h, H], ["B", "n_h", "H"])
    if log_gate_t is not None:
        check_tensor(op, "log_gate_t", log_gate_t, "[B, H]", 2, kind="real")
        check_dims(op, "log_gate_t", log_gate_t, "[B, H]", [B, H], ["B", "H"])
    if state is None:
        state = q_t.new_zeros(B, H, K, V, dtype=torch.float32)
    check_tensor(op, "state", state, "[B, H, K, V]", 4, kind="real")
    check_dims(op, "state", state, "[B, H, K, V]", [B, H, K, V], ["B", "H", "K", "V"])
    o, S = naive.delta_product_step_naive(q_t, k_t, v_t, beta_t, log_gate_t, state.float())
    return o.to(v_t.dtype), S


def diagonal_scan_step(a_t, b_t, state):
    """One recurrent step ``state = a_t * state + b_t``.

    a_t ``[N]`` or ``[B, N]``, b_t ``[B, N]``, state ``[B, N]`` (None = zeros), complex64.
    Returns the new state ``[B, N]``.
    """
    op = "diagonal_scan_step"
    check_tensor(op, "b_t", b_t, "[B, N]", 2, kind="complex")
    B, N = b_t.shape
    if not isinstance(a_t, torch.Tensor) or a_t.dim() not in (1, 2):
        raise ValueError(f"{op}: `a_t` must be a complex64 tensor of shape [N] or [B, N]; got {getattr(a_t, 'shape', a_t)}")
    if a_t.dim() == 1:
        check_tensor(op, "a_t", a_t, "[N]", 1, kind="complex")
        check_dims(op, "a_t", a_t, "[N]", [N], ["N"])
    else:
        check_tensor(op, "a_t", a_t, "[B, N]", 2, kind="complex")
        check_dims(op, "a_t", a_t, "[B, N]", [B, N], ["B", "N"])
    if state is None:
        state = torch.zeros_like(b_t)
    check_tensor(op, "state", state, "[B, N]", 2, kind="complex")
    check_dims(op, "state", state, "[B, N]", [B, N], ["B", "N"])
    return naive.diagonal_scan_step_naive(a_t, b_t, state)


def s4d_step(u_t, dtA, B_bar, C, state):
    """One recurrent S4D step: ``x = exp(dtA) x + B_bar u_t``, ``y_t = 2 Re(sum_n C x)``.

    u_t ``[B, H]`` real, dtA/B_bar/C ``[H, N]`` complex64, state ``[B, H, N]``
    complex64 (None = zeros).  Returns ``(y_t [B, H] in u_t's dtype, state)``.
    """
    op = "s4d_step"
    check_tensor(op, "u_t", u_t, "[B, H]", 2, kind="real")
    B, H = u_t.shape
    check_tensor(op, "dtA", dtA, "[H, N]", 2, kind="complex")
    N = dtA.shape[1]
    for name, x in (("dtA", dtA), ("B_bar", B_bar), ("C", C)):
        check_tensor(op, name, x, "[H, N]", 2, kind="complex")
        check_dims(op, name, x, "[H, N]", [H, N], ["H", "N"])
    if state is None:
        state = torch.zeros(B, H, N, dtype=torch.complex64, device=u_t.device)
    check_tensor(op, "state", state, "[B, H, N]", 3, kind="complex")
    check_dims(op, "state", state, "[B, H, N]", [B, H, N], ["B", "H", "N"])
    y, x = naive.s4d_step_naive(u_t, dtA, B_bar, C, state)
    return y.to(u_t.dtype), x
