"""Exact resume mid-epoch, checkpoint on SIGUSR1, stop on non-finite gradients, one-line config errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import lightning as L
import pytest
import torch

from conftest import ROOT
from ssm.callbacks import Preempted
from ssm.module import NonFiniteError
from train import train

# 40 examples in batches of 8: 5 steps per epoch, 10 steps in two epochs, dropout on.
BASE = [
    "experiment=lra_listops",
    "debug=smoke",
    "model.d_model=16",
    "model.layer.d_state=8",
    "model.dropout=0.2",
    "data.limit_train=40",
    "data.batch_size=8",
    "+data.min_length=20",
    "+data.max_length=120",
    "trainer.max_steps=-1",
    "trainer.max_epochs=2",
    "trainer.limit_val_batches=1",
    "callbacks.last_checkpoint.every_n_train_steps=3",
]


class SignalAtStep(L.Callback):
    def __init__(self, step: int, signum=signal.SIGUSR1):
        self.step, self.signum = step, signum

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.signum)


class NaNGradientAtStep(L.Callback):
    def __init__(self, step: int):
        self.step = step

    def on_after_backward(self, trainer, pl_module):
        if trainer.global_step == self.step:
            p = next(p for n, p in pl_module.named_parameters() if n.endswith("layer.log_dt"))
            p.grad[0] = float("nan")


def weights(path):
    return torch.load(path, map_location="cpu", weights_only=False)["state_dict"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, data_root):
    from conftest import compose_config

    out = tmp_path_factory.mktemp("full")
    cfg = compose_config([f"paths.output_dir={out}", f"paths.data_dir={data_root}", "trainer.accelerator=cpu", *BASE])
    metrics = train(cfg)
    return out, metrics


def assert_same_run(a_dir, a_metrics, b_dir, b_metrics):
    wa, wb = weights(a_dir / "checkpoints" / "last.ckpt"), weights(b_dir / "checkpoints" / "last.ckpt")
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    for key in ("val/acc", "val/loss", "test/acc", "test/loss"):
        assert b_metrics[key] == pytest.approx(a_metrics[key], abs=1e-6), key


def test_last_checkpoint_holds_the_final_step(uninterrupted):
    full_dir, _ = uninterrupted
    # 10 steps with a periodic save every 3: Lightning's ModelCheckpoint alone leaves last.ckpt at
    # step 9; ssm.callbacks.LastCheckpoint writes it again when training ends
    state = torch.load(full_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert state["global_step"] == 10


def test_preempted_run_resumes_exactly(uninterrupted, make_config, tmp_path):
    full_dir, full_metrics = uninterrupted
    first, second = tmp_path / "first", tmp_path / "second"
    with pytest.raises(Preempted) as stop:
        train(make_config(*BASE, output_dir=first), callbacks=[SignalAtStep(7)])
    ckpt = first / "checkpoints" / "preempted.ckpt"
    # the signal arrives during step 8, which finishes before the checkpoint is written
    assert stop.value.path == str(ckpt) and stop.value.step == 8
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    assert state["global_step"] == 8 and state["epoch"] == 1  # mid-way through the second epoch
    metrics = train(make_config(*BASE, f"ckpt_path={ckpt}", output_dir=second))
    assert_same_run(full_dir, full_metrics, second, metrics)


def test_resume_from_rolling_last_checkpoint(uninterrupted, make_config, tmp_path):
    full_dir, full_metrics = uninterrupted
    first, second = tmp_path / "first", tmp_path / "second"
    with pytest.raises(Preempted):
        train(make_config(*BASE, output_dir=first), callbacks=[SignalAtStep(6, signal.SIGTERM)])
    last = first / "checkpoints" / "last.ckpt"
    assert torch.load(last, map_location="cpu", weights_only=False)["global_step"] == 6  # every 3 steps
    metrics = train(make_config(*BASE, f"ckpt_path={last}", output_dir=second))
    assert_same_run(full_dir, full_metrics, second, metrics)


def test_non_finite_gradient_stops_with_step_and_group(make_config, tmp_path):
    with pytest.raises(NonFiniteError) as err:
        train(make_config(*BASE, "callbacks.last_checkpoint.every_n_train_steps=1"), callbacks=[NaNGradientAtStep(4)])
    message = str(err.value)
    assert "step 4" in message and "parameter group" in message and "layer.log_dt" in message
    last = weights(tmp_path / "checkpoints" / "last.ckpt")
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["global_step"] == 4
    assert all(torch.isfinite(v).all() for v in last.values() if v.is_floating_point())


def run_cli(*args, env_extra=None):
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", **(env_extra or {})}
    return subprocess.run([sys.executable, "train.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    "args,expected",
    [
        (["model=no_such_block"], "Could not find 'model/no_such_block'"),
        (["experiment=lra_listops", "data.generate=false", "data.data_dir=/nonexistent/listops", "trainer.accelerator=cpu"], "python -m lra.prepare"),
        (["experiment=lra_listops", "model.layer.d_state=7", "trainer.accelerator=cpu"], "d_state must be an even integer"),
    ],
)
def test_config_errors_are_one_line(args, expected, tmp_path):
    result = run_cli(*args, f"hydra.run.dir={tmp_path}", f"paths.data_dir={tmp_path}")
    assert result.returncode != 0
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
