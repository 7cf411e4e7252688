"""Bad inputs raise errors whose message names the argument and what was expected/given."""
import os
import subprocess
import sys

import pytest
import torch

from kernels import (
    delta_product,
    delta_product_step,
    diagonal_scan,
    diagonal_scan_step,
    s4d_fused_scan,
    s4d_step,
)

B, T, n_h, H, K, V, N = 2, 5, 2, 3, 4, 6, 7


def good_delta():
    return dict(q=torch.randn(B, T, H, K), k=torch.randn(B, T, n_h, H, K), v=torch.randn(B, T, n_h, H, V),
                beta=torch.rand(B, T, n_h, H), log_gate=-torch.rand(B, T, H), initial_state=torch.randn(B, H, K, V))


DELTA_BAD = [
    ("q", torch.randn(B, T, K), "q"),  # wrong rank
    ("k", torch.randn(B, T, H, K), "k"),  # missing n_h
    ("k", torch.randn(B, T + 1, n_h, H, K), "k"),  # T mismatch
    ("v", torch.randn(B, T, n_h + 1, H, V), "v"),  # n_h mismatch
    ("v", torch.randn(B, T, n_h, H + 1, V), "v"),  # H mismatch
    ("beta", torch.rand(B, T, H), "beta"),  # rank
    ("beta", torch.rand(1, T, n_h, H), "beta"),  # no silent broadcasting over B
    ("log_gate", -torch.rand(B, T, n_h, H), "log_gate"),
    ("log_gate", torch.zeros(B, T, H, dtype=torch.int64), "log_gate"),  # integer
    ("initial_state", torch.randn(B, H, V, K), "initial_state"),
    ("initial_state", torch.randn(B, H, K, V, dtype=torch.complex64), "initial_state"),  # complex
    ("q", torch.randint(0, 3, (B, T, H, K)), "q"),  # integer
    ("q", "not a tensor", "q"),
    ("q", torch.randn(B, T, H, K, dtype=torch.float64).to(torch.float16), "q"),  # dtype differs from k, v
]


@pytest.mark.parametrize("arg,value,needle", DELTA_BAD, ids=[f"{i}-{a}" for i, (a, _, _) in enumerate(DELTA_BAD)])
def test_delta_product_bad_inputs(arg, value, needle):
    kw = good_delta()
    kw[arg] = value
    with pytest.raises((ValueError, TypeError)) as e:
        delta_product(**kw, backend="torch")
    assert f"`{needle}`" in str(e.value) and "delta_product" in str(e.value)


@pytest.mark.parametrize("dim", [0, 1])
def test_empty_batch_or_time_rejected(dim):
    kw = good_delta()
    for name in ("q", "k", "v", "beta", "log_gate"):
        kw[name] = kw[name].narrow(dim, 0, 0)
    if dim == 0:
        kw["initial_state"] = kw["initial_state"][:0]
    with pytest.raises(ValueError, match="must be >= 1"):
        delta_product(**kw, backend="torch")
    with pytest.raises(ValueError, match="must be >= 1"):
        diagonal_scan(torch.ones(N, dtype=torch.complex64), torch.zeros(2, 0, N, dtype=torch.complex64))


DIAG_BAD = [
    ("a", torch.ones(N + 1, dtype=torch.complex64), "a"),
    ("a", torch.ones(B, T, N), "a"),  # real instead of complex
    ("a", torch.ones(T, N, dtype=torch.complex64), "a"),  # rank 2
    ("b", torch.ones(B, T, N), "b"),  # real
    ("b", torch.ones(B, T, N, dtype=torch.complex128), "b"),  # complex128
    ("initial_state", torch.ones(B, N + 1, dtype=torch.complex64), "initial_state"),
    ("initial_state", torch.ones(B, N), "initial_state"),
]


@pytest.mark.parametrize("arg,value,needle", DIAG_BAD, ids=[f"{i}-{a}" for i, (a, _, _) in enumerate(DIAG_BAD)])
def test_diagonal_scan_bad_inputs(arg, value, needle):
    kw = dict(a=torch.ones(B, T, N, dtype=torch.complex64), b=torch.ones(B, T, N, dtype=torch.complex64),
              initial_state=torch.ones(B, N, dtype=torch.complex64))
    kw[arg] = value
    with pytest.raises((ValueError, TypeError)) as e:
        diagonal_scan(**kw, backend="torch")
    assert f"`{needle}`" in str(e.value) and "diagonal_scan" in str(e.value)


S4D_BAD = [
    ("u", torch.ones(B, T, H, dtype=torch.complex64), "u"),
    ("u", torch.ones(B, T), "u"),
    ("dtA", torch.ones(H, N), "dtA"),  # real
    ("dtA", torch.ones(H + 1, N, dtype=torch.complex64), "dtA"),
    ("B_bar", torch.ones(H, N + 1, dtype=torch.complex64), "B_bar"),
    ("C", torch.ones(N, dtype=torch.complex64), "C"),
    ("initial_state", torch.ones(B, H, N), "initial_state"),
]


@pytest.mark.parametrize("arg,value,needle", S4D_BAD, ids=[f"{i}-{a}" for i, (a, _, _) in enumerate(S4D_BAD)])
def test_s4d_bad_inputs(arg, value, needle):
    c = torch.ones(H, N, dtype=torch.complex64)
    kw = dict(u=torch.ones(B, T, H), dtA=-c, B_bar=c, C=c, initial_state=torch.ones(B, H, N, dtype=torch.complex64))
    kw[arg] = value
    with pytest.raises((ValueError, TypeError)) as e:
        s4d_fused_scan(**kw, backend="torch")
    assert f"`{needle}`" in str(e.value) and "s4d_fused_scan" in str(e.value)


def test_step_functions_bad_inputs():
    with pytest.raises(ValueError, match="`k_t`"):
        delta_product_step(torch.randn(B, H, K), torch.randn(B, n_h, H + 1, K), torch.randn(B, n_h, H, V),
                           torch.rand(B, n_h, H), None, None)
    with pytest.raises(TypeError, match="`b_t`"):
        diagonal_scan_step(torch.ones(N, dtype=torch.complex64), torch.ones(B, N), None)
    with pytest.raises(ValueError, match="`state`"):
        s4d_step(torch.ones(B, H), *([torch.ones(H, N, dtype=torch.complex64)] * 3),
                 torch.ones(B, H, N + 1, dtype=torch.complex64))


def test_mixed_devices_rejected():
    kw = good_delta()
    kw["v"] = kw["v"].to("meta")
    with pytest.raises(ValueError, match="same device"):
        delta_product(**kw, backend="torch")


def test_unknown_backend_names_choices():
    with pytest.raises(ValueError, match="'naive', 'torch', 'triton'"):
        delta_product(**good_delta(), backend="cuda")
    with pytest.raises(ValueError, match="unknown backend"):
        diagonal_scan(torch.ones(N, dtype=torch.complex64), torch.ones(B, T, N, dtype=torch.complex64), backend="x")


def test_triton_on_cpu_without_interpreter_is_a_clear_error():
    code = (
        "import torch; from kernels import delta_product\n"
        "q = torch.randn(1, 2, 1, 16); k = torch.randn(1, 2, 1, 1, 16)\n"
        "try:\n"
        "    delta_product(q, k, k, torch.rand(1, 2, 1, 1), backend='triton')\n"
        "except RuntimeError as e:\n"
        "    print('ERR', e)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["CUDA_VISIBLE_DEVICES"] = ""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert "ERR" in out.stdout and "TRITON_INTERPRET=1" in out.stdout, out.stdout + out.stderr
