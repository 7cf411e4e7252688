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
