"""autograd.Functions of the Triton backend (one per op), all following one pattern:

    forward:  validate/cast outside; call the plain ``*_fwd(**kwargs)`` launch
              function; save only the inputs (and O(B * T/chunk * state) chunk
              states where the op needs them) for the backward;
    backward: call ``*_bwd(**kwargs)``, which recomputes chunk-level
              intermediates and runs the reverse state pass, then maps the
              gradients back to the inputs' dtypes.
"""
from __future__ import annotations

import torch

from .chunking import chunk_local_cumsum, delta_chunk_layout, reverse_chunk_cumsum


class DeltaProductFunction(torch.autograd.Function):
    """Chunked DeltaProduct with Triton forward and backward kernels."""

    @staticmethod
    def forward(ctx, q, k, v, beta, log_gate, initial_state, output_final_state, chunk_size):
        from .triton.delta import delta_product_fwd

        BT = delta_chunk_layout(k.shape[2], chunk_size)[0]
        G = chunk_local_cumsum(log_gate, BT) if log_gate is not None else None
        h0 = initial_state.float().contiguous() if initial_state is not None else None
        o, hT = delta_product_fwd(q=q, k=k, v=v, beta=beta, G=G, initial_state=h0,
                                  output_final_state=output_final_state, chunk_size=chunk_size)
        ctx.save_for_backward(q, k, v, beta, G, h0)
        ctx.meta = (chunk_size, BT, log_gate.dtype if log_gate is not None else None,
                    initial_state.dtype if initial_state is not None else None)
        return o, hT

    @staticmethod
    def backward(ctx, do, dhT):
        from .triton.delta import delta_product_bwd

        q, k, v, beta, G, h0 = ctx.saved_tensors
        chunk_size, BT, g_dtype, h0_dtype = ctx.meta
        dq, dk, dv, dbeta, dG, dh0 = delta_product_bwd(
            q=q, k=k, v=v, beta=beta, G=G, initial_state=h0, do=do.contiguous(),
            dhT=dhT.float().contiguous() if dhT is not None else None, chunk_size=chunk_size)
        dlog_gate = reverse_chunk_cumsum(dG, BT, q.shape[1]).to(g_dtype) if G is not None else None
        dh0 = dh0.to(h0_dtype) if h0 is not None else None
        return dq, dk, dv, dbeta, dlog_gate, dh0, None, None


def delta_product_triton(q, k, v, beta, log_gate, initial_state, output_final_state, chunk_size):
    o, hT = DeltaProductFunction.apply(q, k, v, beta, log_gate, initial_state, output_final_state, chunk_size)
    return o, (hT if output_final_state else None)


class DiagonalScanFunction(torch.autograd.Function):
    """Chunked complex diagonal scan with Triton forward and backward (adjoint scan) kernels."""

    @staticmethod
    def forward(ctx, a, b, initial_state, chunk_size):
        from .triton.diag import diagonal_scan_fwd

        h = diagonal_scan_fwd(a=a, b=b, initial_state=initial_state, chunk_size=chunk_size)
        ctx.save_for_backward(a, h, initial_state)
        ctx.chunk_size = chunk_size
        return h

    @staticmethod
    def backward(ctx, dh):
        from .triton.diag import diagonal_scan_bwd

        a, h, h0 = ctx.saved_tensors
        da, db, dh0 = diagonal_scan_bwd(a=a, h=h, initial_state=h0, dh=dh.contiguous(), chunk_size=ctx.chunk_size)
        return da, db, dh0, None


def diagonal_scan_triton(a, b, initial_state, chunk_size):
    return DiagonalScanFunction.apply(a, b, initial_state, chunk_size)


class S4DScanFunction(torch.autograd.Function):
    """Fused S4D chunk scan on precomputed chunk operators (toep, E, F, lamC; see chunking.s4d_chunk_params).

    Returns y [B, T, H] and X [B, NC, H, N], the state entering every chunk
    (O(B T/C H N)); gradients w.r.t. X are accepted, which is how the final
    state (computed from X[:, -1] outside) back-propagates.
    """

    @staticmethod
    def forward(ctx, u, toep, E, F, lamC, initial_state, chunk_size):
        from .triton.diag import s4d_fwd

        y, X = s4d_fwd(u=u, toep=toep, E=E, F=F, lamC=lamC, initial_state=initial_state, chunk_size=chunk_size)
        ctx.save_for_backward(u, toep, E, F, lamC, X)
        ctx.chunk_size = chunk_size
        ctx.has_init = initial_state is not None
        return y, X

    @staticmethod
    def backward(ctx, dy, dX):
        from .triton.diag import s4d_bwd

        u, toep, E, F, lamC, X = ctx.saved_tensors
        if dy is None:
            dy = torch.zeros_like(u)
        du, dtoep, dE, dF, dlamC, dx0 = s4d_bwd(u=u, toep=toep, E=E, F=F, lamC=lamC, X=X, dy=dy.contiguous(),
                                                dX=dX, chunk_size=ctx.chunk_size)
        return du, dtoep, dE, dF, dlamC, (dx0 if ctx.has_init else None), None


def s4d_fused_scan_triton(u, dtA, B_bar, C, initial_state, output_final_state, chunk_size):
    from .chunking import cdiv, s4d_chunk_params, s4d_final_state

    if chunk_size < 16 or chunk_size & (chunk_size - 1):
        raise ValueError(f"s4d_fused_scan: backend='triton' needs chunk_size a power of two >= 16; got {chunk_size}")
    toep, E, F, lamC = s4d_chunk_params(dtA, B_bar, C, chunk_size)  # differentiable, O(H N C)
    y, X = S4DScanFunction.apply(u, toep, E, F, lamC, initial_state, chunk_size)
    xT = None
    if output_final_state:
        T = u.shape[1]
        start = (cdiv(T, chunk_size) - 1) * chunk_size
        xT = s4d_final_state(X[:, -1], u[:, start:], dtA, B_bar)
    return y, xT
