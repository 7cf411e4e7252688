"""Pathfinder and Path-X data modules: the release's folder format, split, normalisation, generation, smoke training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lra_fixtures import TINY, write_pathfinder_release
from PIL import Image

from lra.base import MissingDataError
from lra.pathfinder import PathfinderDataModule, PathXDataModule, read_metadata
from train import train

HARD = "curv_contour_length_14"


def test_metadata_field_zero_is_the_subfolder(tmp_path):
    root = write_pathfinder_release(tmp_path / HARD, n=10, per_folder=4)
    (root / "metadata" / "10.npy").write_text("")  # sorted numerically, not as text
    paths, labels = read_metadata(root)
    assert [p.relative_to(root).as_posix() for p in paths[:5]] == ["imgs/0/sample_0.png", "imgs/0/sample_1.png", "imgs/0/sample_2.png", "imgs/0/sample_3.png", "imgs/1/sample_0.png"]
    assert all(p.exists() for p in paths) and set(labels) <= {0, 1}
    (root / "metadata" / "3.npy").write_text("imgs/2 sample_0.png 0 7 14 5\n")
    with pytest.raises(ValueError, match=r"3\.npy:1: field 3"):
        read_metadata(root)


def test_release_folder_split_labels_and_normalisation(tmp_path):
    root = write_pathfinder_release(tmp_path / "pathfinder32" / HARD, n=40, per_folder=16, empty=5)
    dm = PathfinderDataModule(data_dir=str(tmp_path), generate=False, batch_size=64)
    assert dm.dims["d_input"] == 1 and dm.dims["num_classes"] == 2
    dm.setup()
    sizes = [len(dm.splits[s]) for s in ("train", "val", "test")]
    assert sizes == [31, 3, 5]  # 39 readable images (the empty one is skipped): 80/10/10, rounded down but the last
    paths, labels = read_metadata(root)
    label_of = {np.asarray(Image.open(p)).tobytes(): y for p, y in zip(paths, labels) if p.stat().st_size}
    seen = []
    for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()):
        batch = next(iter(loader))
        assert batch["x"].shape[1:] == (1024, 1) and batch["mask"].all()
        assert float(batch["x"].min()) >= -1.0 and float(batch["x"].max()) <= 1.0
        pixels = torch.round((batch["x"][..., 0] * 0.5 + 0.5) * 255).to(torch.uint8).numpy()
        for image, y in zip(pixels, batch["y"].tolist()):
            assert label_of[image.tobytes()] == y  # labels stay with their images
            assert (image[0] == 255) == (y == 1)  # the fixture marks label 1 in the first pixel
            seen.append(image.tobytes())
    assert len(set(seen)) == 39  # the splits are disjoint and cover every readable image


def test_pathx_reads_pathfinder128(tmp_path):
    write_pathfinder_release(tmp_path / "pathfinder128" / HARD, size=128, n=10)
    dm = PathXDataModule(data_dir=str(tmp_path), generate=False, batch_size=4)
    dm.setup()
    assert next(iter(dm.train_dataloader()))["x"].shape == (4, 128 * 128, 1)


def test_wrong_image_size_is_an_error(tmp_path):
    write_pathfinder_release(tmp_path / "pathfinder32" / HARD, size=16, n=10)
    with pytest.raises(ValueError, match="expected a 32x32 image, got 16x16"):
        PathfinderDataModule(data_dir=str(tmp_path), generate=False).prepare_data()


def test_missing_data_names_files_and_commands(tmp_path):
    dm = PathXDataModule(data_dir=str(tmp_path / "pathx"), generate=False)
    with pytest.raises(MissingDataError, match=r"pathfinder128/curv_contour_length_14/metadata/\*\.npy.*python -m lra\.prepare.*data\.generate=auto.*python -m lra\.pathfinder_gen"):
        dm.prepare_data()


def test_generates_when_absent(tmp_path, caplog):
    dm = PathfinderDataModule(data_dir=str(tmp_path), difficulty="curv_baseline", batch_size=8, limit_train=16, limit_val=2, limit_test=2, num_proc=1)
    with caplog.at_level("WARNING"):
        dm.setup()
    assert "SYNTHETIC" in caplog.text
    assert [len(dm.splits[s]) for s in ("train", "val", "test")] == [16, 2, 2]
    assert (tmp_path / "generated" / "pathfinder32").is_dir()
    labels = [int(r["y"]) for r in dm.splits["train"].data]
    assert set(labels) == {0, 1}
    # the release wins over generated data with generate=auto
    write_pathfinder_release(tmp_path / "pathfinder32" / "curv_baseline", n=10)
    assert PathfinderDataModule(data_dir=str(tmp_path), difficulty="curv_baseline").cache_settings()["source"] == "official"


@pytest.mark.parametrize("experiment,folder,size", [("lra_pathfinder", "pathfinder32", 32), ("lra_pathx", "pathfinder128", 128)])
def test_smoke_training(make_config, tmp_path, experiment, folder, size):
    write_pathfinder_release(tmp_path / folder / HARD, size=size, n=20)
    metrics = train(make_config(f"experiment={experiment}", *TINY, "data.generate=false", f"data.data_dir={tmp_path}"))
    assert 0.0 <= metrics["test/acc"] <= 1.0
