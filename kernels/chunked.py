"""Chunked algorithms in plain PyTorch (backend="torch").

The same three-phase chunked scan as the Triton kernels (see kernels.chunking),
written with batched matmuls; autograd goes through the PyTorch ops.  This is
the CPU path and the readable reference for the kernels' chunk algebra.
"""
from __future__ import annotations

from typing import Optional

import torch

from .chunking import (
    cdiv,
    chunk_local_cumsum,
    chunk_state_pass,
    delta_chunk_layout,
    pad_time,
    s4d_chunk_params,
    s4d_final_state,
)


# --------------------------------------------------------------------------- DeltaProduct
def delta_product_chunked(q, k, v, beta, log_gate=None, initial_state=None, output_final_state=False, chunk_size=64):
    """Chunked (WY) DeltaProduct.  Shapes as in kernels.delta_product.

    Per chunk of BT tokens = R interleaved rows (keys K_r, values V_r, betas b_r,
    within-chunk cumulative log gates G_r, query rows = last sub-step of each token):
      A = strict_lower(diag(b) exp(G_i - G_j) K K^T),  T = (I + A)^-1
      W = T diag(b exp(G)) K,  U = T diag(b) V
      N = U - W S;  O = diag(exp(Gq)) Q S + (Q K^T * exp(Gq_a - G_r) * causal) N
      S <- exp(G_last) S + K^T diag(exp(G_last - G)) N
    """
    B, T, H, K = q.shape
    n_h, V = k.shape[2], v.shape[-1]
    BT, R, _ = delta_chunk_layout(n_h, chunk_size)
    NC = cdiv(T, BT)
    Tp = NC * BT
    dev = q.device
    qc = pad_time(q.float(), Tp).reshape(B, NC, BT, H, K).permute(0, 3, 1, 2, 4)  # (B H NC BT K)
    kc = pad_time(k.float(), Tp).reshape(B, NC, R, H, K).permute(0, 3, 1, 2, 4)  # (B H NC R K)
    vc = pad_time(v.float(), Tp).reshape(B, NC, R, H, V).permute(0, 3, 1, 2, 4)  # (B H NC R V)
    bc = pad_time(beta.float(), Tp).reshape(B, NC, R, H).permute(0, 3, 1, 2)  # (B H NC R)
    if log_gate is not None:
        Gq = chunk_local_cumsum(log_gate, BT).reshape(B, H, NC, BT)  # (B H NC BT)
    else:
        Gq = q.new_zeros(B, H, NC, BT, dtype=torch.float32)
    Gr = Gq.repeat_interleave(n_h, dim=-1)  # (B H NC R)

    rows = torch.arange(R, device=dev)
    strict = rows[:, None] > rows[None, :]  # (R R)
    causal = (rows[None, :] // n_h) <= torch.arange(BT, device=dev)[:, None]  # (BT R)
    neg_inf = float("-inf")

    decay_A = torch.exp((Gr[..., :, None] - Gr[..., None, :]).masked_fill(~strict, neg_inf))  # (B H NC R R)
    A = bc[..., :, None] * (kc @ kc.transpose(-1, -2)) * decay_A  # (B H NC R R), strictly lower
    eye = torch.eye(R, device=dev, dtype=torch.float32)
    Tm = torch.linalg.solve_triangular(eye + A, eye.expand_as(A), upper=False, unitriangular=True)  # (B H NC R R)
    W = Tm @ (kc * (bc * torch.exp(Gr))[..., None])  # (B H NC R K)
    U = Tm @ (vc * bc[..., None])  # (B H NC R V)
    decay_P = torch.exp((Gq[..., :, None] - Gr[..., None, :]).masked_fill(~causal, neg_inf))  # (B H NC BT R)
    P = (qc @ kc.transpose(-1, -2)) * decay_P  # (B H NC BT R)
    GL = Gq[..., -1]  # (B H NC)
    decay_out = torch.exp(GL[..., None] - Gr)  # (B H NC R)
    qs = qc * torch.exp(Gq)[..., None]  # (B H NC BT K)

    def transition(c, S):  # S (B H K V)
        Nn = U[:, :, c] - W[:, :, c] @ S  # (B H R V)
        o_c = qs[:, :, c] @ S + P[:, :, c] @ Nn  # (B H BT V)
        S = torch.exp(GL[:, :, c])[..., None, None] * S + kc[:, :, c].transpose(-1, -2) @ (
            decay_out[:, :, c, :, None] * Nn
        )  # (B H K V)
        return o_c, S

    S0 = q.new_zeros(B, H, K, V, dtype=torch.float32) if initial_state is None else initial_state.float()
    outs, S = chunk_state_pass(S0, NC, transition)
    o = torch.stack(outs, dim=2)  # (B H NC BT V)
    o = o.permute(0, 2, 3, 1, 4).reshape(B, Tp, H, V)[:, :T].to(v.dtype).contiguous()  # (B T H V)
    return o, (S if output_final_state else None)


# --------------------------------------------------------------------------- diagonal scan
def _complex_powers(a: torch.Tensor, n: int) -> torch.Tensor:
    """a^0 .. a^n by repeated multiplication (no logs, no division; underflow to 0 is harmless)."""
    pw = [torch.ones_like(a)]
    for _ in range(n):
        pw.append(pw[-1] * a)
    return torch.stack(pw)  # (n+1 ...)


def diagonal_scan_chunked(a, b, initial_state=None, chunk_size=64):
    """Chunked h_t = a_t h_{t-1} + b_t.  a (N) or (B T N), b (B T N) complex64 -> (B T N)."""
    B, T, N = b.shape
    Cs = chunk_size
    NC = cdiv(T, Cs)
    bc = pad_time(b, NC * Cs).reshape(B, NC, Cs, N)  # (B NC C N)
    if a.dim() == 1:
        # time-invariant: the chunk-local scan is a Toeplitz matmul with powers a^(l-s)
        pw = _complex_powers(a, Cs)  # (C+1 N)
        ll = torch.arange(Cs, device=b.device)
        diff = ll[:, None] - ll[None, :]  # (C C)
        L = pw[diff.clamp(min=0)] * (diff >= 0)[..., None]  # (C C N)
        local = torch.einsum("lsn,bcsn->bcln", L, bc)  # (B NC C N)
        cum = pw[1:][None, None].expand(B, NC, Cs, N)  # (B NC C N): a^(l+1)
        a_chunk = pw[Cs][None].expand(B, N)  # (B N)
        a_chunks = [a_chunk] * NC
    else:
        ac = pad_time(a, NC * Cs).reshape(B, NC, Cs, N)  # (B NC C N)
        h = torch.zeros_like(bc[:, :, 0])  # (B NC N)
        p = torch.ones_like(h)  # (B NC N)
        locs, cums = [], []
        for l in range(Cs):  # all chunks at once, sequential inside the chunk
            h = ac[:, :, l] * h + bc[:, :, l]
            p = ac[:, :, l] * p
            locs.append(h)
            cums.append(p)
        local = torch.stack(locs, 2)  # (B NC C N)
        cum = torch.stack(cums, 2)  # (B NC C N)
        a_chunks = [cum[:, c, -1] for c in range(NC)]

    def transition(c, x):  # x (B N): state entering chunk c
        return x, a_chunks[c] * x + local[:, c, -1]

    x0 = b.new_zeros(B, N) if initial_state is None else initial_state
    entering, _ = chunk_state_pass(x0, NC, transition)
    X = torch.stack(entering, 1)  # (B NC N)
    h = local + cum * X[:, :, None, :]  # (B NC C N)
    return h.reshape(B, NC * Cs, N)[:, :T].contiguous()


# --------------------------------------------------------------------------- fused S4D
def s4d_fused_scan_chunked(u, dtA, B_bar, C, initial_state=None, output_final_state=False, chunk_size=64):
    """Chunked diagonal S4D without materialising (B, T, H, N).

    Per chunk: z_c = E u_c (chunk-local end state), x_{c+1} = lamC x_c + z_c,
    y_c = toep u_c + Re(F x_c).  Peak memory O(B T H + B NC H N).
    """
    Bsz, T, H = u.shape
    N = dtA.shape[1]
    Cs = chunk_size
    NC = cdiv(T, Cs)
    toep, E, Fm, lamC = s4d_chunk_params(dtA, B_bar, C, Cs)
    uc = pad_time(u.float(), NC * Cs).reshape(Bsz, NC, Cs, H)  # (B NC C H)
    z = torch.einsum("bcsh,hsn->bchn", uc.to(torch.complex64), E)  # (B NC H N)

    def transition(c, x):  # x (B H N)
        return x, lamC * x + z[:, c]

    x0 = u.new_zeros(Bsz, H, N, dtype=torch.complex64) if initial_state is None else initial_state
    entering, _ = chunk_state_pass(x0, NC, transition)
    X = torch.stack(entering, 1)  # (B NC H N)
    y = torch.einsum("hls,bcsh->bclh", toep, uc) + torch.einsum("hln,bchn->bclh", Fm, X).real  # (B NC C H)
    y = y.reshape(Bsz, NC * Cs, H)[:, :T].to(u.dtype).contiguous()
    xT = None
    if output_final_state:
        xT = s4d_final_state(X[:, -1], uc[:, -1, : T - (NC - 1) * Cs], dtA, B_bar)
    return y, xT
