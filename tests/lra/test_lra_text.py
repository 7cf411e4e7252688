"""LRA Text: IMDb from aclImdb/ folders or a saved DatasetDict, byte tokens, validation policy, smoke training."""

from __future__ import annotations

import random

import numpy as np
import pytest
from lra_fixtures import TINY, text, write_imdb_folder

from lra.base import MissingDataError
from lra.text import TextDataModule, encode_bytes, read_folder
from train import train


def test_encode_bytes():
    assert encode_bytes("ab", 10).tolist() == [97, 98]
    assert encode_bytes("café", 10).tolist() == list("café".encode("utf-8"))  # é is two bytes
    assert encode_bytes(b"a\x00b", 10).tolist() == [97, 98]  # NUL is padding, never a token
    assert encode_bytes("abcdef", 4).tolist() == [97, 98, 99, 100]


def test_reads_aclimdb_folders(tmp_path):
    root = write_imdb_folder(tmp_path, per_class=10)
    dm = TextDataModule(data_dir=str(tmp_path), batch_size=64, max_length=50)
    dm.setup()
    sizes = {s: len(dm.splits[s]) for s in ("train", "val", "test")}
    assert sizes == {"train": 18, "val": 2, "test": 20}  # 10% of the 20 training reviews held out
    # the test split is every test review, as bytes truncated to max_length, labelled by folder
    files, labels = read_folder(root, "test")
    batch = next(iter(dm.test_dataloader()))
    expected = [f.read_bytes()[:50] for f in files]
    got = [bytes(row[mask].tolist()) for row, mask in zip(batch["x"], batch["mask"])]
    assert got == expected
    assert batch["y"].tolist() == labels and sorted(set(labels)) == [0, 1]
    assert int(batch["x"].max()) < TextDataModule.vocab_size
    # unsup reviews are not read
    assert len(read_folder(root, "train")[0]) == 20


def test_saved_datasetdict_and_lra_validation_policy(tmp_path):
    import datasets

    rng = random.Random(1)
    splits = {s: datasets.Dataset.from_dict({"text": [text(rng, 8) for _ in range(6)], "label": [0, 1] * 3}) for s in ("train", "test")}
    datasets.DatasetDict(splits).save_to_disk(str(tmp_path / "imdb"))
    dm = TextDataModule(data_dir=str(tmp_path), batch_size=8, val_split=0)
    dm.setup()
    assert len(dm.splits["train"]) == 6
    val, test = next(iter(dm.val_dataloader())), next(iter(dm.test_dataloader()))
    assert np.array_equal(val["x"], test["x"])  # LRA protocol: validation = test set
    assert test["y"].tolist() == [0, 1] * 3


def test_missing_data_names_files_and_command(tmp_path):
    dm = TextDataModule(data_dir=str(tmp_path / "text"))
    with pytest.raises(MissingDataError, match=r"aclImdb/train/pos/\*\.txt.*python -m lra\.prepare --source aclImdb_v1\.tar\.gz"):
        dm.prepare_data()


def test_smoke_training(make_config, tmp_path):
    write_imdb_folder(tmp_path / "text")
    metrics = train(make_config("experiment=lra_text", *TINY, f"data.data_dir={tmp_path / 'text'}"))
    assert 0.0 <= metrics["test/acc"] <= 1.0
