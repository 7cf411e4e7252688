"""Input validation and backend selection shared by every public entry point.

Every check raises ``ValueError`` / ``TypeError`` whose message names the op,
the argument, the expected shape or dtype and what was actually given.
Nothing is broadcast silently: shapes must match exactly.
"""
from __future__ import annotations

import os
from typing import Optional, Sequence

import torch

BACKENDS = ("auto", "naive", "torch", "triton")


def _desc(x: torch.Tensor) -> str:
    return f"shape {tuple(x.shape)}, dtype {x.dtype}, device {x.device}"


def check_tensor(op: str, name: str, x, spec: str, ndim: int, *, kind: str) -> torch.Tensor:
    """Check type, rank and dtype family of one tensor argument.

    kind: "real" (floating, not complex) or "complex".
    spec: the expected shape written like ``[B, T, H, K]``.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{op}: `{name}` must be a torch.Tensor of shape {spec}; got {type(x).__name__}")
    if x.dim() != ndim:
        raise ValueError(f"{op}: `{name}` must have {ndim} dims {spec}; got {_desc(x)}")
    if kind == "real":
        if not x.dtype.is_floating_point or x.is_complex():
            raise TypeError(
                f"{op}: `{name}` must be a real floating tensor (float32, bfloat16 or float16) of shape {spec}; got {_desc(x)}"
            )
    elif kind == "complex":
        if x.dtype != torch.complex64:
            raise TypeError(f"{op}: `{name}` must be a complex64 tensor of shape {spec}; got {_desc(x)}")
    else:  # pragma: no cover - programming error
        raise AssertionError(kind)
    return x


def check_dims(op: str, name: str, x: torch.Tensor, spec: str, expected: Sequence[Optional[int]], labels: Sequence[str]):
    """Check each dim against ``expected`` (None = free). Labels name the dims in messages."""
    for i, (e, lab) in enumerate(zip(expected, labels)):
        if e is not None and x.shape[i] != e:
            raise ValueError(
                f"{op}: `{name}` must have shape {spec} with {lab}={e} (from the other inputs); "
                f"got {_desc(x)} ({lab}={x.shape[i]})"
            )


def check_nonempty(op: str, **sizes: int):
    for lab, n in sizes.items():
        if n == 0:
            raise ValueError(f"{op}: {lab} must be >= 1; got {lab}=0 (empty inputs are not supported)")


def check_same_device(op: str, **tensors):
    devs = {n: t.device for n, t in tensors.items() if t is not None}
    if len(set(devs.values())) > 1:
        listing = ", ".join(f"`{n}` on {d}" for n, d in devs.items())
        raise ValueError(f"{op}: all tensors must be on the same device; got {listing}")


def resolve_backend(op: str, backend: str, device: torch.device) -> str:
    """Map ``backend`` to one of "naive", "torch", "triton".

    "auto" picks "triton" for CUDA tensors and "torch" otherwise.  "triton" on
    CPU tensors is only allowed under the Triton interpreter (TRITON_INTERPRET=1).
    """
    if backend not in BACKENDS:
        raise ValueError(f"{op}: unknown backend {backend!r}; choose one of {BACKENDS}")
    if backend == "auto":
        return "triton" if device.type == "cuda" else "torch"
    if backend == "triton":
        if device.type != "cuda" and os.environ.get("TRITON_INTERPRET", "0") != "1":
            raise RuntimeError(
                f"{op}: backend='triton' needs CUDA tensors (got tensors on {device}); on CPU use "
                "backend='torch', or set TRITON_INTERPRET=1 before importing triton to run the kernels "
                "in Triton's interpreter"
            )
        try:
            import triton  # noqa: F401
        except ImportError as e:  # pragma: no cover
            raise RuntimeError(f"{op}: backend='triton' requested but triton is not installed") from e
    return backend


def check_delta_inputs(q, k, v, beta, log_gate, initial_state):
    """Validate delta_product inputs; returns (B, T, H, K, V, n_h)."""
    op = "delta_product"
    check_tensor(op, "q", q, "[B, T, H, K]", 4, kind="real")
    check_tensor(op, "k", k, "[B, T, n_h, H, K]", 5, kind="real")
    check_tensor(op, "v", v, "[B, T, n_h, H, V]", 5, kind="real")
    check_tensor(op, "beta", beta, "[B, T, n_h, H]", 4, kind="real")
    B, T, H, K = q.shape
    n_h, V = k.shape[2], v.shape[-1]
    check_dims(op, "k", k, "[B, T, n_h, H, K]", [B, T, None, H, K], ["B", "T", "n_h", "H", "K"])
    check_dims(op, "v", v, "[B, T, n_h, H, V]", [B, T, n_h, H, None], ["B", "T", "n_h", "H", "V"])
    check_dims(op, "beta", beta, "[B, T, n_h, H]", [B, T, n_h, H], ["B", "T", "n_h", "H"])
    if log_gate is not None:
        check_tensor(op, "log_gate", log_gate, "[B, T, H]", 3, kind="real")
        check_dims(op, "log_gate", log_gate, "[B, T, H]", [B, T, H], ["B", "T", "H"])
    if initial_state is not None:
        check_tensor(op, "initial_state", initial_state, "[B, H, K, V]", 4, kind="real")
        check_dims(op, "initial_state", initial_state, "[B, H, K, V]", [B, H, K, V], ["B", "H", "K", "V"])
    if not (q.dtype == k.dtype == v.dtype):
        raise TypeError(f"{op}: `q`, `k`, `v` must share one dtype; got q {q.dtype}, k {k.dtype}, v {v.dtype}")
    check_nonempty(op, B=B, T=T, H=H, K=K, V=V, n_h=n_h)
    check_same_device(op, q=q, k=k, v=v, beta=beta, log_gate=log_gate, initial_state=initial_state)
    if K > 256 or V > 256:
        raise ValueError(f"{op}: K and V must be <= 256; got K={K}, V={V}")
    return B, T, H, K, V, n_h


def check_diag_inputs(a, b, initial_state):
    """Validate diagonal_scan inputs; returns (B, T, N, time_invariant)."""
    op = "diagonal_scan"
    check_tensor(op, "b", b, "[B, T, N]", 3, kind="complex")
    B, T, N = b.shape
    if not isinstance(a, torch.Tensor):
        raise TypeError(f"{op}: `a` must be a complex64 tensor of shape [N] or [B, T, N]; got {type(a).__name__}")
    if a.dim() == 1:
        check_tensor(op, "a", a, "[N]", 1, kind="complex")
        check_dims(op, "a", a, "[N]", [N], ["N"])
    elif a.dim() == 3:
        check_tensor(op, "a", a, "[B, T, N]", 3, kind="complex")
        check_dims(op, "a", a, "[B, T, N]", [B, T, N], ["B", "T", "N"])
    else:
        raise ValueError(f"{op}: `a` must have shape [N] (time-invariant) or [B, T, N]; got {_desc(a)}")
    if initial_state is not None:
        check_tensor(op, "initial_state", initial_state, "[B, N]", 2, kind="complex")
        check_dims(op, "initial_state", initial_state, "[B, N]", [B, N], ["B", "N"])
    check_nonempty(op, B=B, T=T, N=N)
    check_same_device(op, a=a, b=b, initial_state=initial_state)
    return B, T, N, a.dim() == 1


def check_s4d_inputs(u, dtA, B_bar, C, initial_state):
    """Validate s4d_fused_scan inputs; returns (B, T, H, N)."""
    op = "s4d_fused_scan"
    check_tensor(op, "u", u, "[B, T, H]", 3, kind="real")
    Bsz, T, H = u.shape
    check_tensor(op, "dtA", dtA, "[H, N]", 2, kind="complex")
    N = dtA.shape[1]
    check_dims(op, "dtA", dtA, "[H, N]", [H, N], ["H", "N"])
    check_tensor(op, "B_bar", B_bar, "[H, N]", 2, kind="complex")
    check_dims(op, "B_bar", B_bar, "[H, N]", [H, N], ["H", "N"])
    check_tensor(op, "C", C, "[H, N]", 2, kind="complex")
    check_dims(op, "C", C, "[H, N]", [H, N], ["H", "N"])
    if initial_state is not None:
        check_tensor(op, "initial_state", initial_state, "[B, H, N]", 3, kind="complex")
        check_dims(op, "initial_state", initial_state, "[B, H, N]", [Bsz, H, N], ["B", "H", "N"])
    check_nonempty(op, B=Bsz, T=T, H=H, N=N)
    check_same_device(op, u=u, dtA=dtA, B_bar=B_bar, C=C, initial_state=initial_state)
    return Bsz, T, H, N
