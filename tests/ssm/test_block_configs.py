"""Every model config (configs/model/*.yaml) instantiates with the ListOps dimensions, and
composes with experiment=lra_listops into a run that trains a few steps with train(cfg)."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from conftest import CONFIG_DIR
from lra.listops import ListOpsDataModule
from train import train

MODELS = sorted(p.stem for p in (CONFIG_DIR / "model").glob("*.yaml"))
BLOCK_OF = {"s4d": "S4D", "s4_ptd": "S4PTD", "s5": "S5", "s5_ptd": "S5PTD", "deltaproduct": "DeltaProduct"}


def small_state(cfg):
    """S4D-style layers with N = 16 (the N = 64 PTD optimisation takes tens of seconds on a cold cache)."""
    if cfg.model.layer.get("d_state", 0) > 16 and "blocks" not in cfg.model.layer:
        cfg.model.layer.d_state = 16
    return cfg


@pytest.fixture(autouse=True)
def one_thread():
    """Small CPU tensors: avoid intra-op thread oversubscription on shared machines."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_every_block_has_a_model_config():
    assert set(BLOCK_OF) <= set(MODELS)


@pytest.mark.parametrize("model", MODELS)
def test_model_config_instantiates_with_listops_dims(model, make_config):
    cfg = small_state(make_config(f"model={model}"))
    net = instantiate(cfg.model, vocab_size=ListOpsDataModule.vocab_size, num_classes=ListOpsDataModule.num_classes)
    if model in BLOCK_OF:
        assert type(net.blocks[0].layer).__name__ == BLOCK_OF[model]
    x = torch.randint(1, ListOpsDataModule.vocab_size, (2, 40))
    mask = torch.ones_like(x, dtype=torch.bool)
    assert net(x, mask).shape == (2, ListOpsDataModule.num_classes)


@pytest.mark.parametrize("model", MODELS)
def test_smoke_train_lra_listops(model, make_config):
    """experiment=lra_listops model=<name> (bidirectional layers) trains 2 steps and tests, tiny and on CPU."""
    tiny = ["debug=smoke", "model.d_model=16", "model.n_layers=1", "data.limit_train=16", "data.limit_val=8", "data.limit_test=8", "data.batch_size=8", "trainer.max_steps=2"]
    cfg = small_state(make_config("experiment=lra_listops", f"model={model}", *tiny))
    assert cfg.model.layer.bidirectional is True
    metrics = train(cfg)
    assert 0.0 <= metrics["test/acc"] <= 1.0 and metrics["test/loss"] > 0
