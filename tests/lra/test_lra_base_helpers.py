"""The helpers added to lra.base for the LRA tasks: seeded splits, streamed datasets, the collate hook."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from lra.base import SequenceDataModule, seeded_split


def test_seeded_split_sizes_disjoint_and_fixed():
    parts = seeded_split(39, [0.8, 0.1, 0.1], seed=5)
    assert [len(p) for p in parts] == [31, 3, 5]  # rounded down, the last part takes the rest
    assert sorted(np.concatenate(parts).tolist()) == list(range(39))
    assert all((np.diff(p) > 0).all() for p in parts)  # each part sorted
    assert all(np.array_equal(a, b) for a, b in zip(parts, seeded_split(39, [0.8, 0.1, 0.1], seed=5)))
    assert not np.array_equal(parts[1], seeded_split(39, [0.8, 0.1, 0.1], seed=6)[1])
    with pytest.raises(ValueError, match="fractions"):
        seeded_split(10, [0.9, 0.2], seed=0)


class Streamed(SequenceDataModule):
    """A toy module whose splits are streamed in batches, and whose batches carry a marker."""

    name = "streamed"
    vocab_size = 10

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.collate_fn = self.collate

    @staticmethod
    def collate(examples):
        return {"n": len(examples)}

    def cache_settings(self):
        return {}

    def build_splits(self):
        import datasets

        features = datasets.Features({"x": datasets.Sequence(datasets.Value("uint8")), "y": datasets.Value("int64"), "length": datasets.Value("int32")})

        def batches(start):
            for b in range(2):
                rows = [np.full(k + 1, start + b, np.uint8) for k in range(3)]
                offsets = pa.array(np.cumsum([0] + [len(r) for r in rows]).astype(np.int32))
                yield {"x": pa.ListArray.from_arrays(offsets, pa.array(np.concatenate(rows))), "y": [b] * 3, "length": [len(r) for r in rows]}

        return {s: self.stream_dataset(batches(i), features) for i, s in enumerate(("train", "val", "test"))}


def test_stream_dataset_and_collate_hook(tmp_path):
    dm = Streamed(data_dir=str(tmp_path), batch_size=4)
    dm.setup()
    assert not dm.scratch_dir.exists()  # the working files are gone once the cache is saved
    assert len(dm.splits["val"]) == 6
    assert dm.splits["val"][4]["x"].tolist() == [2, 2]
    assert next(iter(dm.train_dataloader())) == {"n": 4}
