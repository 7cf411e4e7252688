"""Every experiment file composes, and its data module, model and LightningModule instantiate."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from conftest import EXPERIMENTS
from ssm.callbacks import BestCheckpoint, LastCheckpoint
from train import build, instantiate_group


def test_experiments_exist():
    assert "lra_listops" in EXPERIMENTS


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_composes_and_instantiates(experiment, make_config):
    cfg = make_config(f"experiment={experiment}")
    assert cfg.task_name == experiment
    datamodule, module = build(cfg)
    n_params = sum(p.numel() for p in module.parameters())
    assert n_params > 0
    # the optimiser and scheduler factories build real objects from the model's parameter groups
    optimizer = module.optimizer_factory(module.parameters())
    assert isinstance(optimizer, torch.optim.Optimizer)
    callbacks = instantiate_group(cfg.callbacks)
    # the best checkpoint by the monitored metric, and a rolling last.ckpt
    assert any(isinstance(c, BestCheckpoint) and c.monitor == cfg.monitor.metric for c in callbacks)
    assert any(isinstance(c, LastCheckpoint) and c.save_last for c in callbacks)
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=instantiate_group(cfg.logger))
    assert trainer.max_epochs == cfg.trainer.max_epochs


@pytest.mark.parametrize("group,option", [("trainer", "cpu"), ("trainer", "gpu"), ("trainer", "ddp"), ("logger", "wandb"), ("debug", "fdr"), ("debug", "smoke")])
def test_group_options_compose(group, option, make_config):
    cfg = make_config(f"{group}={option}")
    if group == "trainer":
        assert cfg.trainer._target_ == "lightning.pytorch.Trainer"
    if group == "logger":
        assert "wandb" in cfg.logger


def test_wandb_logger_runs_offline_without_key(make_config, monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    cfg = make_config("logger=wandb")
    (logger,) = instantiate_group(cfg.logger)
    assert logger._offline is True
