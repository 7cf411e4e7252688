"""Readable token-by-token definitions of every op (backend="naive").

These loops are the specification that the chunked torch and Triton paths are
tested against.  Everything is computed in float32 (complex64 for the diagonal
scan); autograd goes through the plain PyTorch ops.  They are O(T) Python
loops: use them for small T only.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch


def delta_product_step_naive(q_t, k_t, v_t, beta_t, log_gate_t, state):
    """One token of DeltaProduct.

    q_t (B H K), k_t (B n_h H K), v_t (B n_h H V), beta_t (B n_h H),
    log_gate_t (B H) or None, state (B H K V) float32 -> o_t (B H V) float32, state.
    """
    S = state  # (B H K V)
    if log_gate_t is not None:
        S = S * torch.exp(log_gate_t.float())[:, :, None, None]  # (B H K V)
    n_h = k_t.shape[1]
    for j in range(n_h):
        kj = k_t[:, j].float()  # (B H K)
        vj = v_t[:, j].float()  # (B H V)
        bj = beta_t[:, j].float()  # (B H)
        pred = torch.einsum("bhkv,bhk->bhv", S, kj)  # (B H V)
        S = S + bj[:, :, None, None] * kj[:, :, :, None] * (vj - pred)[:, :, None, :]  # (B H K V)
    o_t = torch.einsum("bhkv,bhk->bhv", S, q_t.float())  # (B H V)
    return o_t, S


def delta_product_naive(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    beta: torch.Tensor,
    log_gate: Optional[torch.Tensor] = None,
    initial_state: Optional[torch.Tensor] = None,
    output_final_state: bool = False,
) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Loop definition of delta_product (shapes as in kernels.delta_product)."""
    B, T, H, K = q.shape  # q (B T H K)
    V = v.shape[-1]  # v (B T n_h H V)
    if initial_state is None:
        S = q.new_zeros(B, H, K, V, dtype=torch.float32)  # (B H K V)
    else:
        S = initial_state.float()  # (B H K V)
    outs = []
    for t in range(T):
        g_t = None if log_gate is None else log_gate[:, t]  # (B H)
        o_t, S = delta_product_step_naive(q[:, t], k[:, t], v[:, t], beta[:, t], g_t, S)  # (B H V), (B H K V)
        outs.append(o_t)
    o = torch.stack(outs, dim=1).to(v.dtype)  # (B T H V)
    return o, (S if output_final_state else None)


def diagonal_scan_step_naive(a_t, b_t, state):
    """h = a_t * state + b_t; a_t (N) or (B N), b_t (B N), state (B N) complex64."""
    return a_t * state + b_t  # (B N)


def diagonal_scan_naive(a, b, initial_state=None):
    """Loop definition of diagonal_scan: a (N) or (B T N), b (B T N) -> h (B T N) complex64."""
    B, T, N = b.shape  # b (B T N)
    h = b.new_zeros(B, N) if initial_state is None else initial_state  # (B N)
    hs = []
    for t in range(T):
        a_t = a if a.dim() == 1 else a[:, t]  # (N) or (B N)
        h = diagonal_scan_step_naive(a_t, b[:, t], h)  # (B N)
        hs.append(h)
    return torch.stack(hs, dim=1)  # (B T N)


def s4d_step_naive(u_t, dtA, B_bar, C, state):
    """One step of the diagonal S4D recurrence.

    u_t (B H) real, dtA/B_bar/C (H N) complex64, state (B H N) complex64
    -> y_t (B H) float32, state (B H N).
    """
    lam = torch.exp(dtA)  # (H N)
    x = lam * state + B_bar * u_t.float()[:, :, None]  # (B H N)
    y = 2.0 * torch.einsum("hn,bhn->bh", C, x).real  # (B H)
    return y, x


def s4d_fused_scan_naive(u, dtA, B_bar, C, initial_state=None, output_final_state=False):
    """Loop definition of s4d_fused_scan: u (B T H) -> y (B T H) in u.dtype, final state (B H N)."""
    Bsz, T, H = u.shape  # u (B T H)
    N = dtA.shape[1]  # dtA (H N)
    x = u.new_zeros(Bsz, H, N, dtype=torch.complex64) if initial_state is None else initial_state  # (B H N)
    ys = []
    for t in range(T):
        y_t, x = s4d_step_naive(u[:, t], dtA, B_bar, C, x)  # (B H), (B H N)
        ys.append(y_t)
    y = torch.stack(ys, dim=1).to(u.dtype)  # (B T H)
    return y, (x if output_final_state else None)
