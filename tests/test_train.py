"""train(cfg) end to end on CPU with debug=smoke: checkpoint, metrics, resume."""

from __future__ import annotations

import csv

import pytest

from train import train

TINY = ["experiment=lra_listops", "debug=smoke", "model.layer.d_state=8", "model.d_model=16", "data.limit_train=24", "data.batch_size=8", "+data.min_length=20", "+data.max_length=120"]


def read_metrics(run_dir):
    with open(run_dir / "csv" / "metrics.csv") as f:
        return list(csv.DictReader(f))


def test_smoke_train_writes_checkpoint_and_metrics(make_config, tmp_path):
    cfg = make_config(*TINY, "trainer.max_steps=3")
    metrics = train(cfg)
    assert 0.0 <= metrics["test/acc"] <= 1.0
    assert metrics["test/loss"] > 0
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()
    assert metrics["best_checkpoint"].startswith(str(tmp_path / "checkpoints"))
    rows = read_metrics(tmp_path)
    assert any(r.get("val/acc") for r in rows) and any(r.get("test/acc") for r in rows)


def test_resume_continues_from_checkpoint(make_config, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    train(make_config(*TINY, "trainer.max_steps=2", "trainer.max_epochs=5", output_dir=first))
    last = first / "checkpoints" / "last.ckpt"
    assert last.exists()
    train(make_config(*TINY, "trainer.max_steps=4", "trainer.max_epochs=5", f"ckpt_path={last}", output_dir=second))
    steps = sorted({int(r["step"]) for r in read_metrics(second) if r.get("train/loss_step")})
    # the resumed run logs only the steps after the checkpoint
    assert steps and min(steps) >= 2 and max(steps) == 3


def test_fast_dev_run_tests_current_weights(make_config):
    metrics = train(make_config(*TINY, "debug=fdr"))
    assert "test/acc" in metrics and "best_checkpoint" not in metrics


def test_bad_ckpt_path_fails_clearly(make_config, tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.ckpt"):
        train(make_config(*TINY, f"ckpt_path={tmp_path / 'nope.ckpt'}"))
