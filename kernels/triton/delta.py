"""Triton kernels for chunked (gated) DeltaProduct, forward and backward.

Chunk layout (kernels.chunking.delta_chunk_layout): a chunk is BT tokens =
R = BT * NH interleaved (k, v, beta) rows, held in a block of BC = next_pow2(R)
rows (rows >= R and tokens >= T are masked to zero).  k / v / beta are read
directly from their [B, T, n_h, H, *] layouts, which are the interleaved
[B, T*n_h, H, *] sequence; queries are read per token (only the last
sub-step of a token has a query), so no interleaved query tensor exists.

Kernels (the shared three-phase chunked scan):
  forward   _prepare (chunk-parallel WY: T=(I+A)^-1, W, U)
            _state_fwd (sequential over chunks per (b, h, V-block): entering states h, N = U - W S)
            _output (chunk-parallel: O = exp(Gq) Q S + P N)
  backward  recompute _prepare + _state_fwd, then
            _dn_local (dN = P^T dO), _state_bwd (reverse pass: dS, full dN),
            _grads (chunk-parallel dq, dk, dv, dbeta, d(cumulative gate)).

Precision: all tiles are float32.  tl.dot uses input_precision="ieee" for
float32 inputs (so the kernels match the float32 references to ~1e-5) and
"tf32" for bf16/fp16 inputs (10-bit mantissa, no worse than the inputs'
own rounding).  Gates enter only as exp of differences G_i - G_j (j <= i),
G_i, G_last - G_j of within-chunk cumulative log gates: never positive.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..chunking import cdiv, delta_chunk_layout, next_pow2


@triton.jit
def _rows(i_c, T, BT: tl.constexpr, NH: tl.constexpr, BC: tl.constexpr):
    r = tl.arange(0, BC)
    tok = i_c * BT + r // NH
    ok = (r < BT * NH) & (tok < T)
    return r, tok, ok


@triton.jit
def _load_rows(ptr, i_b, i_h, i_c, T, H, D, BT: tl.constexpr, NH: tl.constexpr, BC: tl.constexpr, BD: tl.constexpr,
               col0):
    """[BC, BD] float32 tile of a [B, T*NH, H, D] tensor: rows of chunk i_c, columns col0..col0+BD."""
    r, tok, ok = _rows(i_c, T, BT, NH, BC)
    row = (i_b.to(tl.int64) * T * NH + i_c * BT * NH + r) * H + i_h
    d = col0 + tl.arange(0, BD)
    x = tl.load(ptr + row[:, None] * D + d[None, :], mask=ok[:, None] & (d < D)[None, :], other=0.0)
    return x.to(tl.float32)


@triton.jit
def _load_tokens(ptr, i_b, i_h, i_c, T, H, D, BT: tl.constexpr, BD: tl.constexpr, col0):
    """[BT, BD] float32 tile of a [B, T, H, D] tensor: tokens of chunk i_c."""
    a = tl.arange(0, BT)
    tq = i_c * BT + a
    row = (i_b.to(tl.int64) * T + tq) * H + i_h
    d = col0 + tl.arange(0, BD)
    x = tl.load(ptr + row[:, None] * D + d[None, :], mask=(tq < T)[:, None] & (d < D)[None, :], other=0.0)
    return x.to(tl.float32)


@triton.jit
def _chunk_tile_ptrs(ptr, base, ROWS: tl.constexpr, D, BD: tl.constexpr, col0):
    """Pointers/mask of a [ROWS, BD] tile in a [..., ROWS, D] float32 per-chunk buffer at chunk index `base`."""
    r = tl.arange(0, ROWS)
    d = col0 + tl.arange(0, BD)
    return ptr + base * ROWS * D + r[:, None] * D + d[None, :], (r < ROWS)[:, None] & (d < D)[None, :]


@triton.jit
def _prepare_kernel(k_ptr, v_ptr, beta_ptr, g_ptr, T_ptr, W_ptr, U_ptr,
                    T, H, K, V, NC,
                    BT: tl.constexpr, NH: tl.constexpr, BC: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
                    USE_G: tl.constexpr, PREC: tl.constexpr):
    i_c = tl.program_id(0)
    i_bh = tl.program_id(1)
    i_b = i_bh // H
    i_h = i_bh % H
    r, tok, ok = _rows(i_c, T, BT, NH, BC)
    base = i_bh.to(tl.int64) * NC + i_c
    b_k = _load_rows(k_ptr, i_b, i_h, i_c, T, H, K, BT, NH, BC, BK, 0)  # [BC, BK]
    brow = (i_b.to(tl.int64) * T * NH + i_c * BT * NH + r) * H + i_h
    b_beta = tl.load(beta_ptr + brow, mask=ok, other=0.0).to(tl.float32)  # [BC]
    mA = (r[:, None] > r[None, :]) & ok[:, None] & ok[None, :]
    b_A = tl.dot(b_k, tl.trans(b_k), input_precision=PREC)  # [BC, BC]
    if USE_G:
        b_g = tl.load(g_ptr + i_bh.to(tl.int64) * NC * BT + tok, mask=ok, other=0.0)  # [BC]
        b_A = b_A * tl.exp(tl.where(mA, b_g[:, None] - b_g[None, :], 0.0))
        b_wk = b_beta * tl.exp(b_g)
    else:
        b_wk = b_beta
    b_A = tl.where(mA, b_A * b_beta[:, None], 0.0)
    # T = (I + A)^-1 by forward substitution on the strictly lower part:
    # row i of (T - I) = -A[i] - sum_{m<i} A[i, m] (T - I)[m]
    b_T = -b_A
    for i in range(1, BC):
        sel = r == i
        row_i = tl.sum(tl.where(sel[:, None], b_T, 0.0), 0)
        row_i = row_i + tl.where(r < i, tl.sum(row_i[:, None] * b_T, 0), 0.0)
        b_T = tl.where(sel[:, None], row_i[None, :], b_T)
    b_T = b_T + tl.where(r[:, None] == r[None, :], 1.0, 0.0)
    p_t, m_t = _chunk_tile_ptrs(T_ptr, base, BC, BC, BC, 0)
    tl.store(p_t, b_T, mask=m_t)
    b_w = tl.dot(b_T, b_k * b_wk[:, None], input_precision=PREC)  # [BC, BK]
    p_w, m_w = _chunk_tile_ptrs(W_ptr, base, BC, K, BK, 0)
    tl.store(p_w, b_w, mask=m_w)
    for i_v in range(0, tl.cdiv(V, BV)):
        b_v = _load_rows(v_ptr, i_b, i_h, i_c, T, H, V, BT, NH, BC, BV, i_v * BV)
        b_u = tl.dot(b_T, b_v * b_beta[:, None], input_precision=PREC)  # [BC, BV]
        p_u, m_u = _chunk_tile_ptrs(U_ptr, base, BC, V, BV, i_v * BV)
        tl.store(p_u, b_u, mask=m_u)


@triton.jit
def _state_fwd_kernel(k_ptr, g_ptr, W_ptr, U_ptr, h_ptr, N_ptr, h0_ptr, hT_ptr,
                      T, H, K, V, NC,
                      BT: tl.constexpr, NH: tl.constexpr, BC: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
                      USE_G: tl.constexpr, HAS_H0: tl.constexpr, STORE_HT: tl.constexpr, PREC: tl.constexpr):
    i_v = tl.program_id(0)
    i_bh = tl.program_id(1)
    i_b = i_bh // H
    i_h = i_bh % H
    kd = tl.arange(0, BK)
    vd = i_v * BV + tl.arange(0, BV)
    kv_off = kd[:, None] * V + vd[None, :]
    kv_mask = (kd < K)[:, None] & (vd < V)[None, :]
    if HAS_H0:
        S = tl.load(h0_ptr + i_bh.to(tl.int64) * K * V + kv_off, mask=kv_mask, other=0.0).to(tl.float32)
    else:
        S = tl.zeros([BK, BV], dtype=tl.float32)
    gbase = i_bh.to(tl.int64) * NC * BT
    for i_c in range(0, NC):
        base = i_bh.to(tl.int64) * NC + i_c
        tl.store(h_ptr + base * K * V + kv_off, S, mask=kv_mask)
        p_w, m_w = _chunk_tile_ptrs(W_ptr, base, BC, K, BK, 0)
        b_w = tl.load(p_w, mask=m_w, other=0.0)
        p_u, m_u = _chunk_tile_ptrs(U_ptr, base, BC, V, BV, i_v * BV)
        b_n = tl.load(p_u, mask=m_u, other=0.0) - tl.dot(b_w, S, input_precision=PREC)  # [BC, BV]
        p_n, m_n = _chunk_tile_ptrs(N_ptr, base, BC, V, BV, i_v * BV)
        tl.store(p_n, b_n, mask=m_n)
        b_k = _load_rows(k_ptr, i_b, i_h, i_c, T, H, K, BT, NH, BC, BK, 0)
        if USE_G:
            r, tok, ok = _rows(i_c, T, BT, NH, BC)
            g_last = tl.load(g_ptr + gbase + i_c * BT + BT - 1)
            b_g = tl.load(g_ptr + gbase + tok, mask=ok, other=0.0)
            dec = tl.where(ok, tl.exp(tl.where(ok, g_last - b_g, 0.0)), 0.0)
            S = S * tl.exp(g_last) + tl.dot(tl.trans(b_k * dec[:, None]), b_n, input_precision=PREC)
        else:
            S = S + tl.dot(tl.trans(b_k), b_n, input_precision=PREC)
    if STORE_HT:
        tl.store(hT_ptr + i_bh.to(tl.int64) * K * V + kv_off, S, mask=kv_mask)


@triton.jit
def _scores(q_ptr, k_ptr, g_ptr, i_b, i_h, i_bh, i_c, T, H, K, NC,
            BT: tl.constexpr, NH: tl.constexpr, BC: tl.constexpr, BK: tl.constexpr,
            USE_G: tl.constexpr, PREC: tl.constexpr):
    """Masked, decayed query-row scores P [BT, BC], queries scaled by exp(Gq) [BT, BK], keys [BC, BK]."""
    r, tok, ok = _rows(i_c, T, BT, NH, BC)
    a = tl.arange(0, BT)
    b_q = _load_tokens(q_ptr, i_b, i_h, i_c, T, H, K, BT, BK, 0)
    b_k = _load_rows(k_ptr, i_b, i_h, i_c, T, H, K, BT, NH, BC, BK, 0)
    mP = ((r[None, :] // NH) <= a[:, None]) & ok[None, :]
    b_p = tl.dot(b_q, tl.trans(b_k), input_precision=PREC)
    if USE_G:
        gbase = i_bh.to(tl.int64) * NC * BT
        gq = tl.load(g_ptr + gbase + i_c * BT + a)
        b_g = tl.load(g_ptr + gbase + tok, mask=ok, other=0.0)
        b_p = b_p * tl.exp(tl.where(mP, gq[:, None] - b_g[None, :], 0.0))
        b_qs = b_q * tl.exp(gq)[:, None]
    else:
        b_qs = b_q
    b_p = tl.where(mP, b_p, 0.0)
    return b_p, b_qs, b_k


@triton.jit
def _output_kernel(q_ptr, k_ptr, g_ptr, h_ptr, N_ptr, o_ptr,
                   T, H, K, V, NC,
                   BT: tl.constexpr, NH: tl.constexpr, BC: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
                   USE_G: tl.constexpr, PREC: tl.constexpr):
    i_v = tl.program_id(0)
    i_c = tl.program_id(1)
    i_bh = tl.program_id(2)
    i_b = i_bh // H
    i_h = i_bh % H
    base = i_bh.to(tl.int64) * NC + i_c
    b_p, b_qs, b_k = _scores(q_ptr, k_ptr, g_ptr, i_b, i_h, i_bh, i_c, T, H, K, NC, BT, NH, BC, BK, USE_G, PREC)
    kd = tl.arange(0, BK)
    vd = i_v * BV + tl.arange(0, BV)
    S = tl.load(h_ptr + base * K * V + kd[:, None] * V + vd[None, :],
                mask=(kd < K)[:, None] & (vd < V)[None, :], other=0.0)  # [BK, BV] entering state
    p_n, m_n = _chunk_tile_ptrs(N_ptr, base, BC, V, BV, i_v * BV)
    b_n = tl.load(p_n, mask=m_n, other=0.0)
    b_o = tl.dot(b_qs, S, input_precision=PREC) + tl.dot(b_p, b_n, input_precision=PREC)  # [BT, BV]
    a = tl.arange(0, BT)
    tq = i_c * BT + a
    row = (i_b.to(tl.int64) * T + tq) * H + i_h
    tl.store(o_ptr + row[:, None] * V + vd[None, :], b_o.to(o_ptr.dtype.element_ty),
             mask=(tq < T)[:, None] & (vd < V)[None, :])


@triton.jit
def _dn_local_kernel(q_ptr, k_ptr, g_ptr, do_ptr, dN_ptr,
                     T, H, K, V, NC,
                     BT: tl.constexpr, NH: tl.constexpr, BC: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
                     USE_G: tl.constexpr, PREC: tl.constexpr):
    i_v = tl.program_id(0)
    i_c = tl.program_id(1)
    i_bh = tl.program_id(2)
    i_b = i_bh // H
    i_h = i_bh % H
    base = i_bh.to(tl.int64) * NC + i_c
    b_p, b_qs, b_k = _scores(q_ptr, k_ptr, g_ptr, i_b, i_h, i_bh, i_c, T, H, K, NC, BT, NH, BC, BK, USE_G, PREC)
    b_do = _load_tokens(do_ptr, i_b, i_h, i_c, T, H, V, BT, BV, i_v * BV)
    b_dn = tl.dot(tl.trans(b_p), b_do, input_precision=PREC)  # [BC, BV]
    p_n, m_n = _chunk_tile_ptrs(dN_ptr, base, BC, V, BV, i_v * BV)
    tl.store(p_n, b_dn, mask=m_n)


@triton.jit
def _state_bwd_kernel(q_ptr, k_ptr, g_ptr, W_ptr, do_ptr, dN_ptr, dh_ptr, dhT_ptr, dh0_ptr,
                      T, H, K, V, NC,
                      BT: tl.constexpr, NH: tl.constexpr, BC: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
                      USE_G: tl.constexpr, HAS_DHT: tl.constexpr, PREC: tl.constexpr):
    i_v = tl.program_id(0)
    i_bh = tl.program_id(1)
    i_b = i_bh // H
    i_h = i_bh % H
    kd = tl.arange(0, BK)
    vd = i_v * BV + tl.arange(0, BV)
    kv_off = kd[:, None] * V + vd[None, :]
    kv_mask = (kd < K)[:, None] & (vd < V)[None, :]
    if HAS_DHT:
        dS = tl.load(dhT_ptr + i_bh.to(tl.int64) * K * V + kv_off, mask=kv_mask, other=0.0).to(tl.float32)
    else:
        dS = tl.zeros([BK, BV], dtype=tl.float32)
    gbase = i_bh.to(tl.int64) * NC * BT
    for ii in range(0, NC):
        i_c = NC - 1 - ii
        base = i_bh.to(tl.int64) * NC + i_c
        # dS = gradient w.r.t. the state leaving chunk i_c
        tl.store(dh_ptr + base * K * V + kv_off, dS, mask=kv_mask)
        p_n, m_n = _chunk_tile_ptrs(dN_ptr, base, BC, V, BV, i_v * BV)
        b_dn = tl.load(p_n, mask=m_n, other=0.0)
        b_k = _load_rows(k_ptr, i_b, i_h, i_c, T, H, K, BT, NH, BC, BK, 0)
        b_q = _load_tokens(q_ptr, i_b, i_h, i_c, T, H, K, BT, BK, 0)
        b_do = _load_tokens(do_ptr, i_b, i_h, i_c, T, H, V, BT, BV, i_v * BV)
        p_w, m_w = _chunk_tile_ptrs(W_ptr, base, BC, K, BK, 0)
        b_w = tl.load(p_w, mask=m_w, other=0.0)
        if USE_G:
            r, tok, ok = _rows(i_c, T, BT, NH, BC)
            a = tl.arange(0, BT)
            g_last = tl.load(g_ptr + gbase + i_c * BT + BT - 1)
            b_g = tl.load(g_ptr + gbase + tok, mask=ok, other=0.0)
            gq = tl.load(g_ptr + gbase + i_c * BT + a)
            dec = tl.where(ok, tl.exp(tl.where(ok, g_last - b_g, 0.0)), 0.0)
            b_dn = b_dn + dec[:, None] * tl.dot(b_k, dS, input_precision=PREC)
            dS = dS * tl.exp(g_last) + tl.dot(tl.trans(b_q * tl.exp(gq)[:, None]), b_do, input_precision=PREC)
        else:
            b_dn = b_dn + tl.dot(b_k, dS, input_precision=PREC)
            dS = dS + tl.dot(tl.trans(b_q), b_do, input_precision=PREC)
        dS = dS - tl.dot(tl.trans(b_w), b_dn, input_precision=PREC)
        tl.store(p_n, b_dn, mask=m_n)
    tl.store(dh0_ptr + i_bh.to(tl.int64) * K * V + kv_off, dS, mask=kv_mask)


@triton.jit
def _grads_kernel(q_ptr, k_ptr, v_ptr, beta_ptr, g_ptr, T_ptr, h_ptr, N_ptr, dh_ptr, dN_ptr, do_ptr,
                  dq_ptr, dk_ptr, dv_ptr, dbeta_ptr, dg_ptr,
                  T, H, K, V, NC,
                  BT: tl.constexpr, NH: tl.constexpr, BC: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
                  USE_G: tl.constexpr, PREC: tl.constexpr):
    i_c = tl.program_id(0)
    i_bh = tl.program_id(1)
    i_b = i_bh // H
    i_h = i_bh % H
    base = i_bh.to(tl.int64) * NC + i_c
    gbase = i_bh.to(tl.int64) * NC * BT
    r, tok, ok = _rows(i_c, T, BT, NH, BC)
    a = tl.arange(0, BT)
    kd = tl.arange(0, BK)
    b_q = _load_tokens(q_ptr, i_b, i_h, i_c, T, H, K, BT, BK, 0)  # [BT, BK]
    b_k = _load_rows(k_ptr, i_b, i_h, i_c, T, H, K, BT, NH, BC, BK, 0)  # [BC, BK]
    brow = (i_b.to(tl.int64) * T * NH + i_c * BT * NH + r) * H + i_h
    b_beta = tl.load(beta_ptr + brow, mask=ok, other=0.0).to(tl.float32)
    p_t, m_t = _chunk_tile_ptrs(T_ptr, base, BC, BC, BC, 0)
    b_T = tl.load(p_t, mask=m_t, other=0.0)  # [BC, BC]
    mP = ((r[None, :] // NH) <= a[:, None]) & ok[None, :]
    mA = (r[:, None] > r[None, :]) & ok[:, None] & ok[None, :]
    if USE_G:
        g_last = tl.load(g_ptr + gbase + i_c * BT + BT - 1)
        b_g = tl.load(g_ptr + gbase + tok, mask=ok, other=0.0)
        gq = tl.load(g_ptr + gbase + i_c * BT + a)
        decP = tl.exp(tl.where(mP, gq[:, None] - b_g[None, :], 0.0))
        decA = tl.exp(tl.where(mA, b_g[:, None] - b_g[None, :], 0.0))
        dec = tl.where(ok, tl.exp(tl.where(ok, g_last - b_g, 0.0)), 0.0)
        eg = tl.where(ok, tl.exp(b_g), 0.0)
        egq = tl.exp(gq)
    else:
        decP = tl.full([BT, BC], 1.0, tl.float32)
        decA = tl.full([BC, BC], 1.0, tl.float32)
        dec = tl.where(ok, 1.0, 0.0)
        eg = tl.where(ok, 1.0, 0.0)
        egq = tl.full([BT], 1.0, tl.float32)

    b_dP = tl.zeros([BT, BC], dtype=tl.float32)
    b_dq = tl.zeros([BT, BK], dtype=tl.float32)
    b_dkS = tl.zeros([BC, BK], dtype=tl.float32)
    b_dw = tl.zeros([BC, BK], dtype=tl.float32)
    b_dT = tl.zeros([BC, BC], dtype=tl.float32)
    b_dbeta = tl.zeros([BC], dtype=tl.float32)
    b_dgq = tl.zeros([BT], dtype=tl.float32)
    b_D = tl.zeros([BC], dtype=tl.float32)
    b_dgl = tl.zeros([BK], dtype=tl.float32)
    for i_v in range(0, tl.cdiv(V, BV)):
        vd = i_v * BV + tl.arange(0, BV)
        m_kv = (kd < K)[:, None] & (vd < V)[None, :]
        p_h = kd[:, None] * V + vd[None, :]
        S = tl.load(h_ptr + base * K * V + p_h, mask=m_kv, other=0.0)  # [BK, BV] entering state
        dSp = tl.load(dh_ptr + base * K * V + p_h, mask=m_kv, other=0.0)  # [BK, BV] grad of leaving state
        p_n, m_n = _chunk_tile_ptrs(N_ptr, base, BC, V, BV, i_v * BV)
        b_n = tl.load(p_n, mask=m_n, other=0.0)
        p_dn, m_dn = _chunk_tile_ptrs(dN_ptr, base, BC, V, BV, i_v * BV)
        b_dn = tl.load(p_dn, mask=m_dn, other=0.0)
        b_do = _load_tokens(do_ptr, i_b, i_h, i_c, T, H, V, BT, BV, i_v * BV)
        b_v = _load_rows(v_ptr, i_b, i_h, i_c, T, H, V, BT, NH, BC, BV, i_v * BV)
        b_dP += tl.dot(b_do, tl.trans(b_n), input_precision=PREC)
        b_dq += tl.dot(b_do, tl.trans(S), input_precision=PREC)
        b_dkS += tl.dot(b_n, tl.trans(dSp), input_precision=PREC)
        b_D += tl.sum(tl.dot(b_k, dSp, input_precision=PREC) * b_n, 1)
        b_dw -= tl.dot(b_dn, tl.trans(S), input_precision=PREC)
        b_tdn = tl.dot(tl.trans(b_T), b_dn, input_precision=PREC)  # T^T dU  [BC, BV]
        vrow = (i_b.to(tl.int64) * T * NH + i_c * BT * NH + r) * H + i_h
        tl.store(dv_ptr + vrow[:, None] * V + vd[None, :], (b_tdn * b_beta[:, None]).to(dv_ptr.dtype.element_ty),
                 mask=ok[:, None] & (vd < V)[None, :])
        b_dbeta += tl.sum(b_v * b_tdn, 1)
        b_dT += tl.dot(b_dn, tl.trans(b_v * b_beta[:, None]), input_precision=PREC)
        if USE_G:
            b_dgq += tl.sum(b_do * tl.dot(b_q, S, input_precision=PREC), 1)
            b_dgl += tl.sum(dSp * S, 1)

    # intra-chunk attention-like part: O += P N
    b_p = tl.where(mP, tl.dot(b_q, tl.trans(b_k), input_precision=PREC) * decP, 0.0)
    b_dPm = tl.where(mP, b_dP * decP, 0.0)
    b_dq = b_dq * egq[:, None] + tl.dot(b_dPm, b_k, input_precision=PREC)
    b_dk = tl.dot(tl.trans(b_dPm), b_q, input_precision=PREC) + b_dkS * dec[:, None]
    # W = T diag(beta exp(G)) K
    b_wk = b_beta * eg
    b_tdw = tl.dot(tl.trans(b_T), b_dw, input_precision=PREC)  # [BC, BK]
    b_dk += b_tdw * b_wk[:, None]
    b_ktdw = tl.sum(b_k * b_tdw, 1)
    b_dbeta += eg * b_ktdw
    b_dT += tl.dot(b_dw, tl.trans(b_k * b_wk[:, None]), input_precision=PREC)
    # T = (I + A)^-1  ->  dA = -T^T dT T^T on the strictly lower part
    b_dA = -tl.dot(tl.trans(b_T), tl.dot(b_dT, tl.trans(b_T), input_precision=PREC), input_precision=PREC)
    b_dA = tl.where(mA, b_dA, 0.0)
    b_kk = tl.dot(b_k, tl.trans(b_k), input_precision=PREC)
    b_dbeta += tl.sum(b_dA * b_kk * decA, 1)
    b_dM = b_dA * b_beta[:, None] * decA
    b_dk += tl.dot(b_dM, b_k, input_precision=PREC) + tl.dot(tl.trans(b_dM), b_k, input_precision=PREC)

    tq = i_c * BT + a
    qrow = (i_b.to(tl.int64) * T + tq) * H + i_h
    tl.store(dq_ptr + qrow[:, None] * K + kd[None, :], b_dq.to(dq_ptr.dtype.element_ty),
             mask=(tq < T)[:, None] & (kd < K)[None, :])
    krow = (i_b.to(tl.int64) * T * NH + i_c * BT * NH + r) * H + i_h
    tl.store(dk_ptr + krow[:, None] * K + kd[None, :], b_dk.to(dk_ptr.dtype.element_ty),
             mask=ok[:, None] & (kd < K)[None, :])
    tl.store(dbeta_ptr + krow, b_dbeta.to(dbeta_ptr.dtype.element_ty), mask=ok)
    if USE_G:
        # gradient w.r.t. the within-chunk cumulative log gate, per row, then per token
        b_dAA = b_dM * b_kk  # dA * A
        dG_row = tl.sum(b_dAA, 1) - tl.sum(b_dAA, 0)
        b_dPP = b_dP * b_p  # dP * P
        dG_row = dG_row - tl.sum(b_dPP, 0) - dec * b_D + b_wk * b_ktdw
        dgq = b_dgq * egq + tl.sum(b_dPP, 1)
        dgl = tl.sum(b_dgl, 0) * tl.exp(g_last) + tl.sum(dec * b_D, 0)
        tokm = (r[None, :] // NH) == a[:, None]
        dG_tok = tl.sum(tl.where(tokm, dG_row[None, :], 0.0), 1) + dgq + tl.where(a == BT - 1, dgl, 0.0)
        tl.store(dg_ptr + gbase + i_c * BT + a, dG_tok)


# --------------------------------------------------------------------------- launch functions
def _config(q, k, v, chunk_size):
    B, T, H, K = q.shape
    n_h, V = k.shape[2], v.shape[-1]
    BT, _, BC = delta_chunk_layout(n_h, chunk_size)
    BK = max(16, next_pow2(K))
    BV = min(max(16, next_pow2(V)), 64 if BK <= 128 else 32)
    prec = "ieee" if q.dtype == torch.float32 else "tf32"
    return dict(B=B, T=T, H=H, K=K, V=V, NH=n_h, BT=BT, BC=BC, BK=BK, BV=BV, NC=cdiv(T, BT), PREC=prec)


def _recompute(*, q, k, v, beta, G, h0, c, store_final):
    """Phases 1-2 (prepare + state pass).  Returns T, W, U, h (entering states), N, final state."""
    B, H, K, V, NC, BC = c["B"], c["H"], c["K"], c["V"], c["NC"], c["BC"]
    f32 = dict(device=q.device, dtype=torch.float32)
    Tm = torch.empty(B * H, NC, BC, BC, **f32)
    W = torch.empty(B * H, NC, BC, K, **f32)
    U = torch.empty(B * H, NC, BC, V, **f32)
    h = torch.empty(B * H, NC, K, V, **f32)
    N = torch.empty(B * H, NC, BC, V, **f32)
    hT = torch.empty(B, H, K, V, **f32) if store_final else None
    use_g = G is not None
    gp = G if use_g else W  # dummy pointer when unused
    meta = dict(BT=c["BT"], NH=c["NH"], BC=BC, BK=c["BK"], BV=c["BV"], USE_G=use_g, PREC=c["PREC"])
    _prepare_kernel[(NC, B * H)](k, v, beta, gp, Tm, W, U, c["T"], H, K, V, NC, **meta)
    _state_fwd_kernel[(cdiv(V, c["BV"]), B * H)](
        k, gp, W, U, h, N, h0 if h0 is not None else W, hT if store_final else W,
        c["T"], H, K, V, NC, HAS_H0=h0 is not None, STORE_HT=store_final, **meta)
    return Tm, W, U, h, N, hT


def delta_product_fwd(*, q, k, v, beta, G=None, initial_state=None, output_final_state=False, chunk_size=64):
    """Forward: o [B, T, H, V] (v's dtype) and the final state [B, H, K, V] float32 (or None).

    G: within-chunk cumulative log gates [B, H, NC*BT] float32 (kernels.chunking.chunk_local_cumsum) or None.
    All tensors contiguous.
    """
    c = _config(q, k, v, chunk_size)
    _, _, _, h, N, hT = _recompute(q=q, k=k, v=v, beta=beta, G=G, h0=initial_state, c=c,
                                   store_final=output_final_state)
    o = torch.empty(c["B"], c["T"], c["H"], c["V"], device=q.device, dtype=v.dtype)
    use_g = G is not None
    _output_kernel[(cdiv(c["V"], c["BV"]), c["NC"], c["B"] * c["H"])](
        q, k, G if use_g else h, h, N, o, c["T"], c["H"], c["K"], c["V"], c["NC"],
        BT=c["BT"], NH=c["NH"], BC=c["BC"], BK=c["BK"], BV=c["BV"], USE_G=use_g, PREC=c["PREC"])
    return o, hT


def delta_product_bwd(*, q, k, v, beta, G=None, initial_state=None, do, dhT=None, chunk_size=64):
    """Backward: recomputes the forward's chunk states, returns
    (dq, dk, dv, dbeta, dG [B, H, NC*BT] float32 or None, dh0 [B, H, K, V] float32)."""
    c = _config(q, k, v, chunk_size)
    B, T, H, K, V, NC, BC, BT = c["B"], c["T"], c["H"], c["K"], c["V"], c["NC"], c["BC"], c["BT"]
    Tm, W, U, h, N, _ = _recompute(q=q, k=k, v=v, beta=beta, G=G, h0=initial_state, c=c, store_final=False)
    del U
    use_g = G is not None
    gp = G if use_g else h
    meta = dict(BT=BT, NH=c["NH"], BC=BC, BK=c["BK"], BV=c["BV"], USE_G=use_g, PREC=c["PREC"])
    dN = torch.empty_like(N)
    _dn_local_kernel[(cdiv(V, c["BV"]), NC, B * H)](q, k, gp, do, dN, T, H, K, V, NC, **meta)
    dh = torch.empty_like(h)
    dh0 = torch.empty(B, H, K, V, device=q.device, dtype=torch.float32)
    _state_bwd_kernel[(cdiv(V, c["BV"]), B * H)](
        q, k, gp, W, do, dN, dh, dhT if dhT is not None else dh, dh0, T, H, K, V, NC,
        HAS_DHT=dhT is not None, **meta)
    dq = torch.empty_like(q)
    dk = torch.empty_like(k)
    dv = torch.empty_like(v)
    dbeta = torch.empty_like(beta)
    dG = torch.empty(B, H, NC * BT, device=q.device, dtype=torch.float32) if use_g else None
    _grads_kernel[(NC, B * H)](
        q, k, v, beta, gp, Tm, h, N, dh, dN, do, dq, dk, dv, dbeta, dG if use_g else h,
        T, H, K, V, NC, **meta)
    return dq, dk, dv, dbeta, dG, dh0
