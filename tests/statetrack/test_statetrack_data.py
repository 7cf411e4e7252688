"""State-tracking data modules: batch contract, determinism, limits, lengths, configs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from lra.base import IGNORE_INDEX, PAD_ID
from statetrack.data import GroupWordDataModule, ModArithDataModule

SMALL = dict(train_length=12, test_length=24, num_train=40, num_val=10, num_test=10)


def _arrays(dm, split):
    return dm.splits[split].x.copy(), dm.splits[split].y.copy()


@pytest.mark.parametrize("cls,kwargs", [(GroupWordDataModule, {"group": "S3"}), (ModArithDataModule, {"bracket_prob": 0.4, "min_train_length": 1})])
def test_same_seed_same_data_other_seed_other_data(cls, kwargs):
    a, b, c = cls(**kwargs, **SMALL, gen_seed=7), cls(**kwargs, **SMALL, gen_seed=7), cls(**kwargs, **SMALL, gen_seed=8)
    for dm in (a, b, c):
        dm.setup()
    for split in ("train", "val", "test"):
        xa, ya = _arrays(a, split)
        xb, yb = _arrays(b, split)
        assert np.array_equal(xa, xb) and np.array_equal(ya, yb)
        assert not np.array_equal(xa, _arrays(c, split)[0])
    # splits come from different streams
    assert not np.array_equal(a.splits["train"].x[:10], a.splits["val"].x)


def test_batch_contract_and_dims():
    dm = GroupWordDataModule(group="A5", batch_size=8, **SMALL)
    dm.setup()
    assert dm.dims == {"vocab_size": 61, "d_input": None, "num_classes": 60, "output": "token", "dual": False}
    batch = next(iter(dm.train_dataloader()))
    assert batch["x"].shape == batch["y"].shape == batch["mask"].shape == (8, 12)
    assert batch["x"].dtype == batch["y"].dtype == torch.long
    assert batch["mask"].all() and (batch["x"] != PAD_ID).all()
    assert batch["y"].min() >= 0 and batch["y"].max() < 60
    assert next(iter(dm.test_dataloader()))["x"].shape[1] == 24


def test_test_split_equals_length_loader_and_limits():
    dm = GroupWordDataModule(group="S3", limit_test=6, eval_batch_size=100, **SMALL)
    dm.setup()
    assert len(dm.splits["test"]) == 6 and len(dm.splits["train"]) == 40
    same = next(iter(dm.length_dataloader(24)))
    assert torch.equal(same["x"], next(iter(dm.test_dataloader()))["x"])
    # the first sequences at a length do not depend on how many are drawn
    more = next(iter(dm.length_dataloader(24, num=9)))
    assert torch.equal(more["x"][:6], same["x"])
    longer = next(iter(dm.length_dataloader(100, num=3)))
    assert longer["x"].shape == (3, 100)


def test_varying_training_lengths_are_padded():
    dm = GroupWordDataModule(group="Z5", min_train_length=3, batch_size=40, bucket=False, **SMALL)
    dm.setup()
    lengths = dm.splits["train"].lengths
    assert lengths.min() >= 3 and lengths.max() <= 12 and len(set(lengths.tolist())) > 3
    batch = next(iter(dm.train_dataloader()))
    assert (batch["mask"].sum(1) >= 3).all()
    assert (batch["y"][~batch["mask"]] == IGNORE_INDEX).all()
    # a prefix of a word problem is a word problem: labels are running sums mod 5 of the real tokens
    for x, y, m in zip(batch["x"], batch["y"], batch["mask"]):
        bits = (x[m] - 1).numpy()
        assert np.array_equal(y[m].numpy(), np.cumsum(bits) % 5)


def test_bos_token_starts_every_word_and_carries_no_target():
    plain = GroupWordDataModule(group="S4", min_train_length=5, **SMALL)
    bos = GroupWordDataModule(group="S4", min_train_length=5, bos=True, **SMALL)
    plain.setup()
    bos.setup()
    assert bos.dims["vocab_size"] == 26 and bos.dims["num_classes"] == 24 and plain.dims["vocab_size"] == 25
    for split in ("train", "test"):
        x, y = _arrays(bos, split)
        assert (x[:, 0] == 25).all() and (y[:, 0] == IGNORE_INDEX).all()
        assert (x[:, 1:] != 25).all()  # the BOS id is used nowhere else
        words = x[:, 1:] != PAD_ID
        assert (y[:, 1:][words] >= 0).all() and (y[:, 1:][words] < 24).all()
        # lengths count the group elements; BOS comes on top
        assert np.array_equal(bos.splits[split].lengths, (x != PAD_ID).sum(1))
        assert words.sum(1).max() == bos.lengths[split] and words.sum(1).min() >= (5 if split == "train" else bos.lengths[split])
    # the targets after BOS are the running products of the words that follow it
    x, y = _arrays(bos, "test")
    g = bos.group
    for row_x, row_y in zip(x[:5], y[:5]):
        assert np.array_equal(row_y[1:], g.running_product((row_x[1:] - 1)[None].astype(np.int64))[0])
    with pytest.raises(ValueError, match="bos must be true or false"):
        GroupWordDataModule(group="S3", bos="yes", **SMALL)


@pytest.mark.parametrize("kwargs", [{"train_length": 0}, {"min_train_length": 20}, {"num_val": 0}, {"group": "Q8"}])
def test_bad_settings_fail_clearly(kwargs):
    with pytest.raises(ValueError):
        GroupWordDataModule(**{**SMALL, **kwargs})


@pytest.mark.parametrize("experiment", ["state_parity", "state_z60", "state_s3", "state_s4", "state_a5", "state_s5", "state_modarith"])
def test_state_experiments_set_the_reference_setup(experiment, make_config):
    cfg = make_config(f"experiment={experiment}")
    assert cfg.task_name == experiment
    assert cfg.model.layer._target_ == "ssm.deltaproduct.DeltaProduct"
    assert cfg.model.n_layers == 1
    assert cfg.monitor.metric == "val/seq_acc"
    assert cfg.callbacks.early_stopping.stopping_threshold == 0.99
    assert cfg.module.optimizer.lr == 1e-3 and cfg.module.scheduler._target_ == "ssm.optim.cosine_warmup"
    assert cfg.data.num_train == 100_000
    if experiment != "state_modarith":
        assert (cfg.data.train_length, cfg.data.test_length) == (128, 512)
    dm = instantiate(cfg.data, limit_train=4, limit_val=2, limit_test=2, num_train=4)
    assert dm.dims["output"] == "token"
