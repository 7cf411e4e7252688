"""Shared fixtures: composing the real Hydra configs with CPU/tiny overrides."""

from __future__ import annotations

import os
from pathlib import Path

# One intra-op thread (also for the processes tests start): the tensors in tests are
# tiny, and on a busy 2-core machine two threads were 10-100x slower than one.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(1)

# Triton kernels run through the interpreter on machines without CUDA.  Must be set
# before triton is imported anywhere in the test session.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest
from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = ROOT / "configs"
EXPERIMENTS = sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))


def compose_config(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    """One data folder per test session, so generated data sets are built once."""
    return tmp_path_factory.mktemp("data")


@pytest.fixture
def make_config(tmp_path, data_root):
    """Compose ``train.yaml`` with the given overrides, writing into this test's tmp_path, on CPU."""

    def make(*overrides: str, output_dir: Path | None = None):
        return compose_config(
            [
                f"paths.output_dir={output_dir or tmp_path}",
                f"paths.data_dir={data_root}",
                "trainer.accelerator=cpu",
                *overrides,
            ]
        )

    return make
