"""Triton kernels for complex diagonal scans and the fused S4D path, forward and backward.

Triton has no complex type: complex64 tensors are read through
``torch.view_as_real`` (interleaved re/im float32 pairs) and all arithmetic is
done on (re, im) float32 pairs.

One generic kernel, ``_chunk_scan_kernel``, runs ``h = a * h + b`` sequentially
over the time steps of one chunk for a block of BN channels.  Flags select:
start from zero or from a carried state (HAS_INIT), store every state or only
the chunk's final state and the product of its a's (STORE_ALL / STORE_FINAL),
run backwards in time with a(t+1) conjugated (the adjoint recurrence), and
accumulate the gradient of a.  The same kernel therefore does all three phases
of the chunked scan (local pass, chunk-level state pass, output pass) in both
directions.  Products of a are only ever multiplied (no division), so decays
that underflow to 0 are harmless.

The fused S4D path (time-invariant Lambda) adds two dense chunk kernels:
``_proj_kernel`` (chunk end states z_c = sum_s M[s] x_s, tl.dot over the
chunk's time axis) and ``_out_kernel`` (y = Toeplitz(K) x + Re(F X), tl.dot);
the backward reuses both with transposed / conjugated matrices, and the state
passes reuse ``_chunk_scan_kernel``.  Nothing of size [B, T, H, N] is made.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..chunking import cdiv, next_pow2


@triton.jit
def _chunk_scan_kernel(a_ptr, b_ptr, init_ptr, h_ptr, fin_ptr, prod_ptr, hprev_ptr, h0_ptr, ga_ptr,
                       T, N, NC, CHUNK, sa_b, sa_t,
                       BN: tl.constexpr, HAS_INIT: tl.constexpr, STORE_ALL: tl.constexpr,
                       STORE_FINAL: tl.constexpr, REVERSE: tl.constexpr, SHIFT_A: tl.constexpr,
                       CONJ_A: tl.constexpr, GRAD_A: tl.constexpr, GA_PER_STEP: tl.constexpr,
                       HAS_H0: tl.constexpr):
    i_n = tl.program_id(0)
    i_c = tl.program_id(1)
    i_b = tl.program_id(2).to(tl.int64)
    n = i_n * BN + tl.arange(0, BN)
    mn = n < N
    cidx = 2 * ((i_b * NC + i_c) * N + n)  # [B, NC, N] buffers
    if HAS_INIT:
        hr = tl.load(init_ptr + cidx, mask=mn, other=0.0)
        hi = tl.load(init_ptr + cidx + 1, mask=mn, other=0.0)
    else:
        hr = tl.zeros([BN], dtype=tl.float32)
        hi = tl.zeros([BN], dtype=tl.float32)
    pr = tl.full([BN], 1.0, tl.float32)
    pi = tl.zeros([BN], dtype=tl.float32)
    gar = tl.zeros([BN], dtype=tl.float32)
    gai = tl.zeros([BN], dtype=tl.float32)
    t0 = i_c * CHUNK
    for i in range(0, CHUNK):
        if REVERSE:
            t = t0 + CHUNK - 1 - i
        else:
            t = t0 + i
        if SHIFT_A:
            ta = t + 1
        else:
            ta = t
        # per-lane copies of the scalar step index keep every mask a [BN] block
        # (block & scalar masks are rejected by the interpreter)
        tv = n * 0 + t
        valid = tv < T
        a_ok = (tv + (ta - t)) < T
        aidx = 2 * (i_b * sa_b + ta.to(tl.int64) * sa_t + n)
        ar = tl.load(a_ptr + aidx, mask=mn & a_ok, other=0.0)
        ai = tl.load(a_ptr + aidx + 1, mask=mn & a_ok, other=0.0)
        if not SHIFT_A:
            ar = tl.where(valid, ar, 1.0)  # padded steps are the identity
        if CONJ_A:
            ai = -ai
        bidx = 2 * ((i_b * T + t) * N + n)
        br = tl.load(b_ptr + bidx, mask=mn & valid, other=0.0)
        bi = tl.load(b_ptr + bidx + 1, mask=mn & valid, other=0.0)
        nr = ar * hr - ai * hi + br
        hi = ar * hi + ai * hr + bi
        hr = nr
        if STORE_FINAL:
            npr = ar * pr - ai * pi
            pi = ar * pi + ai * pr
            pr = npr
        if STORE_ALL:
            tl.store(h_ptr + bidx, hr, mask=mn & valid)
            tl.store(h_ptr + bidx + 1, hi, mask=mn & valid)
        if GRAD_A:
            # d a_t = lambda_t * conj(h_{t-1}),  h_{-1} = h0
            pidx = 2 * ((i_b * T + t - 1) * N + n)
            hpr = tl.load(hprev_ptr + pidx, mask=mn & valid & (tv >= 1), other=0.0)
            hpi = tl.load(hprev_ptr + pidx + 1, mask=mn & valid & (tv >= 1), other=0.0)
            if HAS_H0:
                hpr += tl.load(h0_ptr + 2 * (i_b * N + n), mask=mn & (tv == 0), other=0.0)
                hpi += tl.load(h0_ptr + 2 * (i_b * N + n) + 1, mask=mn & (tv == 0), other=0.0)
            gr = hr * hpr + hi * hpi
            gi = hi * hpr - hr * hpi
            if GA_PER_STEP:
                tl.store(ga_ptr + bidx, gr, mask=mn & valid)
                tl.store(ga_ptr + bidx + 1, gi, mask=mn & valid)
            else:
                gar += tl.where(valid, gr, 0.0)
                gai += tl.where(valid, gi, 0.0)
    if STORE_FINAL:
        tl.store(fin_ptr + cidx, hr, mask=mn)
        tl.store(fin_ptr + cidx + 1, hi, mask=mn)
        tl.store(prod_ptr + cidx, pr, mask=mn)
        tl.store(prod_ptr + cidx + 1, pi, mask=mn)
    if GRAD_A and not GA_PER_STEP:
        tl.store(ga_ptr + cidx, gar, mask=mn)
        tl.store(ga_ptr + cidx + 1, gai, mask=mn)


def _r(x):
    """complex64 -> float32 (..., 2) view (contiguous)."""
    return torch.view_as_real(x.resolve_conj().contiguous())


def _scan_launch(a, b, *, chunk, init=None, store_all=False, store_final=False, reverse=False, shift_conj=False,
                 conj=False, hprev=None, h0=None, grad_a=False):
    """Launch _chunk_scan_kernel over b [B, T, N] (complex64) with chunks of `chunk` steps.

    a: [N] (time-invariant) or [B, T, N].  init: [B, NC, N] carried states.
    Returns (h or None, fin or None, prod or None, ga or None).
    """
    B, T, N = b.shape
    NC = cdiv(T, chunk)
    dev = b.device
    inv = a.dim() == 1
    sa_b, sa_t = (0, 0) if inv else (T * N, N)
    h = torch.empty_like(b) if store_all else None
    fin = torch.empty(B, NC, N, dtype=torch.complex64, device=dev) if store_final else None
    prod = torch.empty_like(fin) if store_final else None
    ga = None
    if grad_a:
        ga = torch.empty_like(b) if not inv else torch.empty(B, NC, N, dtype=torch.complex64, device=dev)
    ar, br = _r(a), _r(b)
    dummy = br
    BN = min(128, max(16, next_pow2(N)))
    _chunk_scan_kernel[(cdiv(N, BN), NC, B)](
        ar, br, _r(init) if init is not None else dummy, _r(h) if h is not None else dummy,
        _r(fin) if fin is not None else dummy, _r(prod) if prod is not None else dummy,
        _r(hprev) if hprev is not None else dummy, _r(h0) if h0 is not None else dummy,
        _r(ga) if ga is not None else dummy,
        T, N, NC, chunk, sa_b, sa_t,
        BN=BN, HAS_INIT=init is not None, STORE_ALL=store_all, STORE_FINAL=store_final, REVERSE=reverse,
        SHIFT_A=shift_conj, CONJ_A=shift_conj or conj, GRAD_A=grad_a, GA_PER_STEP=not inv, HAS_H0=h0 is not None)
    return h, fin, prod, ga


def chunk_state_pass(a, z, *, init=None, reverse=False, conj=False):
    """Sequential pass over chunks: forward S_{c+1} = a_c S_c + z_c (returns the state after each chunk),
    reverse G_c = a_c G_{c+1} + z_c (returns G_c).  a [N] or [B, NC, N], z [B, NC, N]; one kernel chunk = all NC."""
    B, NC, N = z.shape
    init3 = init.reshape(B, 1, N) if init is not None else None
    h, _, _, _ = _scan_launch(a, z, chunk=NC, init=init3, store_all=True, reverse=reverse, conj=conj)
    return h


def diagonal_scan_fwd(*, a, b, initial_state=None, chunk_size=64):
    """h [B, T, N] for h_t = a_t h_{t-1} + b_t (complex64, a [N] or [B, T, N])."""
    B, T, N = b.shape
    NC = cdiv(T, chunk_size)
    if NC == 1:
        init = initial_state.reshape(B, 1, N) if initial_state is not None else None
        return _scan_launch(a, b, chunk=chunk_size, init=init, store_all=True)[0]
    _, fin, prod, _ = _scan_launch(a, b, chunk=chunk_size, store_final=True)  # phase 1: local
    after = chunk_state_pass(prod, fin, init=initial_state)  # phase 2: state after each chunk
    first = initial_state.reshape(B, 1, N) if initial_state is not None else torch.zeros_like(after[:, :1])
    entering = torch.cat([first, after[:, :-1]], 1).contiguous()
    return _scan_launch(a, b, chunk=chunk_size, init=entering, store_all=True)[0]  # phase 3


def diagonal_scan_bwd(*, a, h, initial_state=None, dh, chunk_size=64):
    """Adjoint: lambda_t = dh_t + conj(a_{t+1}) lambda_{t+1}.  Returns (da, db, dh0)."""
    B, T, N = dh.shape
    NC = cdiv(T, chunk_size)
    if NC == 1:
        carry = None
    else:
        _, fin, prod, _ = _scan_launch(a, dh, chunk=chunk_size, store_final=True, reverse=True, shift_conj=True)
        lam_start = chunk_state_pass(prod, fin, reverse=True)  # lambda at each chunk's first step
        carry = torch.cat([lam_start[:, 1:], torch.zeros_like(lam_start[:, :1])], 1).contiguous()
    lam, _, _, ga = _scan_launch(a, dh, chunk=chunk_size, init=carry, store_all=True, reverse=True,
                                 shift_conj=True, hprev=h, h0=initial_state, grad_a=True)
    if a.dim() == 1:
        ga = ga.sum((0, 1))
    a0 = a if a.dim() == 1 else a[:, 0]
    dh0 = (a0.conj() * lam[:, 0]) if initial_state is not None else None
    return ga, lam, dh0


# --------------------------------------------------------------------------- fused S4D
@triton.jit
def _proj_kernel(x_ptr, m_ptr, z_ptr, T, H, N, NC,
                 CS: tl.constexpr, BNC: tl.constexpr, BN: tl.constexpr, PREC: tl.constexpr):
    """z[b, c, h, n] = sum_s M[h, s, n] x[b, c*CS + s, h]   (x real [B, T, H], M/z complex)."""
    i_cb = tl.program_id(0)
    i_bh = tl.program_id(1)
    i_n = tl.program_id(2)
    i_b = (i_bh // H).to(tl.int64)
    i_h = i_bh % H
    c = i_cb * BNC + tl.arange(0, BNC)
    s = tl.arange(0, CS)
    t = c[:, None] * CS + s[None, :]
    x = tl.load(x_ptr + (i_b * T + t) * H + i_h, mask=(c < NC)[:, None] & (t < T), other=0.0).to(tl.float32)
    n = i_n * BN + tl.arange(0, BN)
    moff = 2 * ((i_h * CS + s[:, None]) * N + n[None, :])
    mm = (n < N)[None, :]
    mr = tl.load(m_ptr + moff, mask=mm, other=0.0)
    mi = tl.load(m_ptr + moff + 1, mask=mm, other=0.0)
    zr = tl.dot(x, mr, input_precision=PREC)
    zi = tl.dot(x, mi, input_precision=PREC)
    zoff = 2 * (((i_b * NC + c[:, None]) * H + i_h) * N + n[None, :])
    zm = (c < NC)[:, None] & (n < N)[None, :]
    tl.store(z_ptr + zoff, zr, mask=zm)
    tl.store(z_ptr + zoff + 1, zi, mask=zm)


@triton.jit
def _out_kernel(x_ptr, m1_ptr, X_ptr, f_ptr, y_ptr, T, H, N, NC,
                CS: tl.constexpr, BNC: tl.constexpr, BN: tl.constexpr, PREC: tl.constexpr):
    """y[b, c*CS + l, h] = sum_s M1[h, l, s] x[b, c*CS + s, h] + Re(sum_n F[h, l, n] X[b, c, h, n])."""
    i_cb = tl.program_id(0)
    i_bh = tl.program_id(1)
    i_b = (i_bh // H).to(tl.int64)
    i_h = i_bh % H
    c = i_cb * BNC + tl.arange(0, BNC)
    s = tl.arange(0, CS)
    t = c[:, None] * CS + s[None, :]
    tm = (c < NC)[:, None] & (t < T)
    x = tl.load(x_ptr + (i_b * T + t) * H + i_h, mask=tm, other=0.0).to(tl.float32)
    m1 = tl.load(m1_ptr + (i_h * CS + s[:, None]) * CS + s[None, :])  # [CS(l), CS(s)]
    y = tl.dot(x, tl.trans(m1), input_precision=PREC)  # [BNC, CS]
    for i_n in range(0, tl.cdiv(N, BN)):
        n = i_n * BN + tl.arange(0, BN)
        xoff = 2 * (((i_b * NC + c[:, None]) * H + i_h) * N + n[None, :])
        xm = (c < NC)[:, None] & (n < N)[None, :]
        Xr = tl.load(X_ptr + xoff, mask=xm, other=0.0)
        Xi = tl.load(X_ptr + xoff + 1, mask=xm, other=0.0)
        foff = 2 * ((i_h * CS + s[:, None]) * N + n[None, :])
        fm = (n < N)[None, :]
        Fr = tl.load(f_ptr + foff, mask=fm, other=0.0)
        Fi = tl.load(f_ptr + foff + 1, mask=fm, other=0.0)
        y += tl.dot(Xr, tl.trans(Fr), input_precision=PREC) - tl.dot(Xi, tl.trans(Fi), input_precision=PREC)
    tl.store(y_ptr + (i_b * T + t) * H + i_h, y.to(y_ptr.dtype.element_ty), mask=tm)


def _s4d_blocks(N):
    return 16, min(64, max(16, next_pow2(N)))  # BNC (chunks per program), BN


def s4d_proj(x, M, chunk):
    """[B, T, H] real x, [H, C, N] complex M -> [B, NC, H, N] complex chunk sums."""
    B, T, H = x.shape
    N = M.shape[-1]
    NC = cdiv(T, chunk)
    BNC, BN = _s4d_blocks(N)
    z = torch.empty(B, NC, H, N, dtype=torch.complex64, device=x.device)
    prec = "ieee" if x.dtype == torch.float32 else "tf32"
    _proj_kernel[(cdiv(NC, BNC), B * H, cdiv(N, BN))](x, _r(M), _r(z), T, H, N, NC,
                                                       CS=chunk, BNC=BNC, BN=BN, PREC=prec)
    return z


def s4d_out(x, M1, X, Fm, chunk, out_dtype):
    """y = chunk-Toeplitz(M1) x + Re(F X): [B, T, H] in out_dtype."""
    B, T, H = x.shape
    N = Fm.shape[-1]
    NC = cdiv(T, chunk)
    BNC, BN = _s4d_blocks(N)
    y = torch.empty(B, T, H, dtype=out_dtype, device=x.device)
    prec = "ieee" if x.dtype == torch.float32 else "tf32"
    _out_kernel[(cdiv(NC, BNC), B * H)](x, M1.contiguous(), _r(X), _r(Fm), y, T, H, N, NC,
                                        CS=chunk, BNC=BNC, BN=BN, PREC=prec)
    return y


def s4d_fwd(*, u, toep, E, F, lamC, initial_state=None, chunk_size=64):
    """Fused S4D forward.  Returns y [B, T, H] (u's dtype) and X [B, NC, H, N], the state entering each chunk."""
    B, T, H = u.shape
    N = E.shape[-1]
    z = s4d_proj(u, E, chunk_size)  # (B NC H N) chunk-local end states
    NC = z.shape[1]
    h0 = initial_state.reshape(B, H * N) if initial_state is not None else None
    after = chunk_state_pass(lamC.reshape(H * N), z.reshape(B, NC, H * N), init=h0)  # (B NC HN)
    first = h0.reshape(B, 1, H * N) if h0 is not None else torch.zeros_like(after[:, :1])
    X = torch.cat([first, after[:, :-1]], 1).reshape(B, NC, H, N).contiguous()
    y = s4d_out(u, toep, X, F, chunk_size, u.dtype)
    return y, X


def s4d_bwd(*, u, toep, E, F, lamC, X, dy, dX=None, chunk_size=64):
    """Fused S4D backward.  Returns (du, dtoep, dE, dF, dlamC, dx0)."""
    B, T, H = u.shape
    N = E.shape[-1]
    NC = X.shape[1]
    Cs = chunk_size
    gX = s4d_proj(dy, F.conj(), Cs)  # (B NC H N) dL/dX_c from the outputs
    if dX is not None:
        gX = gX + dX
    G = chunk_state_pass(lamC.reshape(H * N), gX.reshape(B, NC, H * N), reverse=True, conj=True)
    G = G.reshape(B, NC, H, N)  # total gradient of the state entering chunk c
    gz = torch.cat([G[:, 1:], torch.zeros_like(G[:, :1])], 1).contiguous()  # grad of z_c = grad of X_{c+1}
    du = s4d_out(dy, toep.transpose(1, 2), gz, E.conj(), Cs, u.dtype)
    # parameter-side reductions over (batch, chunk): batched matmuls of O(B T H) and O(B NC H N) tensors
    Tp = NC * Cs
    uc = torch.nn.functional.pad(u.float(), (0, 0, 0, Tp - T)).reshape(B, NC, Cs, H)
    dyc = torch.nn.functional.pad(dy.float(), (0, 0, 0, Tp - T)).reshape(B, NC, Cs, H)
    tri = torch.ones(Cs, Cs, device=u.device).tril()
    dtoep = torch.einsum("bclh,bcsh->hls", dyc, uc) * tri
    Xr, Xi = X.real, X.imag
    dF = torch.complex(torch.einsum("bclh,bchn->hln", dyc, Xr), -torch.einsum("bclh,bchn->hln", dyc, Xi))
    dE = torch.complex(torch.einsum("bcsh,bchn->hsn", uc, gz.real), torch.einsum("bcsh,bchn->hsn", uc, gz.imag))
    dlamC = (gz * X.conj()).sum((0, 1))
    return du, dtoep, dE, dF, dlamC, G[:, 0]
