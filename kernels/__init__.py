"""scanlab kernels: one chunked linear-scan design, with naive / torch / Triton backends.

Public API (shapes in the docstrings)::

    o, S = delta_product(q, k, v, beta, log_gate=None, initial_state=None,
                         output_final_state=False, backend="auto")       # DeltaNet / DeltaProduct
    h = diagonal_scan(a, b, initial_state=None, backend="auto")          # h_t = a_t h_{t-1} + b_t (complex)
    y, x = s4d_fused_scan(u, dtA, B_bar, C, initial_state=None,
                          output_final_state=False, backend="auto")      # fused diagonal S4D, no [B,T,H,N]
    o_t, S = delta_product_step(q_t, k_t, v_t, beta_t, log_gate_t, state)   # recurrent inference
    h_t = diagonal_scan_step(a_t, b_t, state)
    y_t, x = s4d_step(u_t, dtA, B_bar, C, state)
    s4d_fft_conv(u, dtA, B_bar, C)                                        # FFT-convolution reference/baseline

backend: "naive" (token loop, the definition), "torch" (chunked PyTorch, CPU path),
"triton" (Triton forward+backward kernels; CPU only under TRITON_INTERPRET=1),
"auto" (triton for CUDA tensors, torch otherwise).

Layout: naive.py (definitions), chunking.py (shared chunk helpers), chunked.py
(torch chunked), triton/ (kernels + launch functions), ops.py (autograd.Functions),
api.py (validated public functions), validate.py (input checks), reference.py (FFT conv).
"""
from .api import (
    delta_product,
    delta_product_step,
    diagonal_scan,
    diagonal_scan_step,
    s4d_fused_scan,
    s4d_step,
)
from .reference import s4d_fft_conv

__all__ = [
    "delta_product",
    "delta_product_step",
    "diagonal_scan",
    "diagonal_scan_step",
    "s4d_fused_scan",
    "s4d_step",
    "s4d_fft_conv",
]
