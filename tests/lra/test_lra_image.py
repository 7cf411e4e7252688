"""LRA Image: CIFAR-10 python batches, grayscale as PIL computes it, normalisation, split, smoke training."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from lra_fixtures import TINY, write_cifar
from PIL import Image

from lra.base import MissingDataError
from lra.image import CIFAR_GRAY_MEAN, CIFAR_GRAY_STD, ImageDataModule, PixelCollate, luma
from train import train


def test_luma_matches_pil():
    rows = np.random.default_rng(0).integers(0, 256, size=(5, 3072), dtype=np.uint8)
    for row, gray in zip(rows, luma(rows)):
        rgb = row.reshape(3, 32, 32).transpose(1, 2, 0)
        assert np.array_equal(np.asarray(Image.fromarray(rgb).convert("L")).reshape(-1), gray)


def test_pixel_collate_normalises():
    batch = PixelCollate(0.5, 0.25)([{"x": np.array([0, 255, 51], np.uint8), "y": np.array(3)}] * 2)
    assert batch["x"].shape == (2, 3, 1) and batch["x"].dtype == torch.float32
    assert torch.allclose(batch["x"][0, :, 0], torch.tensor([-2.0, 2.0, -1.2]))
    assert batch["mask"].all() and batch["y"].tolist() == [3, 3]


def test_reads_batches_holds_out_validation(tmp_path):
    folder = write_cifar(tmp_path, per_batch=20)
    dm = ImageDataModule(data_dir=str(tmp_path), batch_size=10)
    assert dm.dims["d_input"] == 1 and dm.dims["num_classes"] == 10
    dm.setup()
    assert [len(dm.splits[s]) for s in ("train", "val", "test")] == [90, 10, 20]
    with open(folder / "test_batch", "rb") as f:
        raw = pickle.load(f, encoding="bytes")
    batch = next(iter(dm.test_dataloader()))
    assert batch["x"].shape == (10, 1024, 1)
    expected = (luma(raw[b"data"][:10]) / 255.0 - CIFAR_GRAY_MEAN) / CIFAR_GRAY_STD
    assert torch.allclose(batch["x"][..., 0], torch.as_tensor(expected, dtype=torch.float32), atol=1e-5)
    assert batch["y"].tolist() == raw[b"labels"][:10]
    # the held-out images are training images, disjoint from the kept ones, and fixed by the seed
    train_x = {bytes(r["x"]) for r in dm.splits["train"].data}
    val_x = [bytes(r["x"]) for r in dm.splits["val"].data]
    assert not train_x & set(val_x)
    again = ImageDataModule(data_dir=str(tmp_path), split_seed=0)
    again.setup()
    assert [bytes(r["x"]) for r in again.splits["val"].data] == val_x


def test_missing_data_names_files_and_command(tmp_path):
    with pytest.raises(MissingDataError, match=r"data_batch_1.*test_batch.*python -m lra\.prepare --source cifar-10-python\.tar\.gz"):
        ImageDataModule(data_dir=str(tmp_path / "image")).prepare_data()


def test_smoke_training(make_config, tmp_path):
    write_cifar(tmp_path / "image")
    # 16 training images = one epoch of two steps, so validation runs and a checkpoint is kept
    metrics = train(make_config("experiment=lra_image", *TINY, "data.limit_train=16", f"data.data_dir={tmp_path / 'image'}"))
    assert "best_checkpoint" in metrics
    assert 0.0 <= metrics["test/acc"] <= 1.0
