"""LRA Retrieval: AAN TSV parsing, paired (B, 2, L) batches, missing files, smoke training."""

from __future__ import annotations

import pytest
from lra_fixtures import TINY, write_aan

from lra.base import MissingDataError
from lra.retrieval import RetrievalDataModule, parse_line
from train import train


def test_parse_line():
    assert parse_line('1.0\ta\tb\tfirst "doc"\tsecond doc\n', "x:1") == (1, 'first "doc"', "second doc")
    assert parse_line("0\ta\tb\tx\ty", "x:1")[0] == 0
    with pytest.raises(ValueError, match="x:7.*5 tab-separated"):
        parse_line("1\ta\tb\tonly four", "x:7")
    with pytest.raises(ValueError, match="0 or 1"):
        parse_line("2\ta\tb\tx\ty", "x:1")


def test_pairs_are_batched_as_two_documents(tmp_path):
    folder = write_aan(tmp_path / "tsv_data", sizes=(6, 3, 3))
    dm = RetrievalDataModule(data_dir=str(tmp_path), batch_size=3, max_length=40)
    assert dm.dims["dual"] is True
    dm.setup()
    assert [len(dm.splits[s]) for s in ("train", "val", "test")] == [6, 3, 3]
    batch = next(iter(dm.val_dataloader()))  # the eval file, in order
    assert batch["x"].shape[:2] == (3, 2) and batch["mask"].shape == batch["x"].shape
    lines = (folder / "new_aan_pairs.eval.tsv").read_text(encoding="utf-8").splitlines()
    for row, mask, line in zip(batch["x"], batch["mask"], lines):
        _, _, _, text1, text2 = line.split("\t")
        assert bytes(row[0][mask[0]].tolist()) == text1.encode()[:40]
        assert bytes(row[1][mask[1]].tolist()) == text2.encode()[:40]
    assert batch["y"].tolist() == [0, 1, 0]


def test_missing_files_name_files_and_command(tmp_path):
    dm = RetrievalDataModule(data_dir=str(tmp_path / "retrieval"))
    with pytest.raises(MissingDataError, match=r"new_aan_pairs\.train\.tsv.*new_aan_pairs\.eval\.tsv.*python -m lra\.prepare"):
        dm.prepare_data()


def test_smoke_training(make_config, tmp_path):
    write_aan(tmp_path / "retrieval")
    metrics = train(make_config("experiment=lra_retrieval", *TINY, f"data.data_dir={tmp_path / 'retrieval'}"))
    assert 0.0 <= metrics["test/acc"] <= 1.0
