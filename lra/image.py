"""LRA Image: CIFAR-10 in grayscale, the 1024 pixels read in raster order as one feature each; 10 classes.

Files: the CIFAR-10 python release ``cifar-10-batches-py/`` in ``data_dir`` (or ``data_dir``
itself): ``data_batch_1`` .. ``data_batch_5`` (training) and ``test_batch``, pickled dicts
with ``b"data"`` (N, 3072) uint8 (the red, green and blue 32x32 planes, row-major) and
``b"labels"``.

* Grayscale: ITU-R 601-2 luma, L = (299 R + 587 G + 114 B) / 1000, rounded to an
  integer exactly as PIL's ``convert("L")`` (and so torchvision's ``Grayscale``) does.
* Storage: uint8 pixels; the batch is normalised in the collate function:
  x = (L / 255 - 122.6/255) / (61.0/255), the fixed mean and standard deviation of
  grayscale CIFAR-10 used by the S4 repository's LRA pipeline.  Batches are (B, 1024, 1).
* Splits: 10% of the 50k training images (seeded by ``split_seed``) are held out for
  validation (45k / 5k); the 10k ``test_batch`` images are the test set.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from lra.base import MissingDataError, SequenceDataModule, pad_collate, seeded_split

TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
CIFAR_GRAY_MEAN = 122.6 / 255.0
CIFAR_GRAY_STD = 61.0 / 255.0


class PixelCollate:
    """Batches uint8 pixel sequences as normalised float features: x = (p / 255 - mean) / std, (B, L, 1).

    Examples of equal length (every image task) are stacked; otherwise the features go
    through ``pad_collate``.  A plain class, so DataLoader workers can pickle it.
    """

    def __init__(self, mean: float, std: float):
        if std <= 0:
            raise ValueError(f"std must be positive, got {std}")
        self.mean, self.std = float(mean), float(std)

    def features(self, pixels: torch.Tensor) -> torch.Tensor:
        return ((pixels.float() / 255.0 - self.mean) / self.std).unsqueeze(-1)

    def __call__(self, examples: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
        if len({len(e["x"]) for e in examples}) > 1:
            return pad_collate([{"x": self.features(torch.as_tensor(e["x"])), "y": e["y"]} for e in examples])
        x = self.features(torch.as_tensor(np.stack([e["x"] for e in examples])))  # (B L 1)
        y = torch.as_tensor(np.array([e["y"] for e in examples])).long()
        return {"x": x, "mask": torch.ones(x.shape[:2], dtype=torch.bool), "y": y}


def luma(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601-2 luma of (N, 3072) CIFAR rows (planes R, G, B), rounded as PIL does: uint8 (N, 1024)."""
    rgb = rgb.reshape(len(rgb), 3, 1024).astype(np.uint32)
    return ((rgb[:, 0] * 19595 + rgb[:, 1] * 38470 + rgb[:, 2] * 7471 + 0x8000) >> 16).astype(np.uint8)


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(data (N, 3072) uint8, labels (N,)) of one CIFAR-10 python batch file."""
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    data = np.asarray(batch[b"data"], dtype=np.uint8)
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
        raise ValueError(f"{path}: expected b'data' of shape (N, 3072) and N labels, got {data.shape} and {labels.shape}")
    return data, labels


def find_cifar(data_dir: Path) -> Path | None:
    for folder in (data_dir / "cifar-10-batches-py", data_dir):
        if all((folder / name).exists() for name in (*TRAIN_FILES, TEST_FILE)):
            return folder
    return None


class ImageDataModule(SequenceDataModule):
    """Grayscale CIFAR-10 as sequences of 1024 pixels (one feature per step), 10 classes.

    Args:
        data_dir: folder with ``cifar-10-batches-py/`` (or the batch files themselves).
        val_split: fraction of the training images held out for validation.
        split_seed: seed of the hold-out.
        mean, std: normalisation of the [0, 1] gray values.
        **kwargs: batching options of ``lra.base.SequenceDataModule``.
    """

    name = "image"
    d_input = 1
    num_classes = 10

    def __init__(
        self,
        data_dir: str = "data/image",
        val_split: float = 0.1,
        split_seed: int = 0,
        mean: float = CIFAR_GRAY_MEAN,
        std: float = CIFAR_GRAY_STD,
        **kwargs,
    ):
        kwargs.setdefault("bucket", False)  # every image has 1024 pixels
        super().__init__(data_dir=data_dir, **kwargs)
        if not 0 < val_split < 1:
            raise ValueError(f"val_split must be in (0, 1), got {val_split}")
        self.val_split = float(val_split)
        self.split_seed = int(split_seed)
        self.collate_fn = PixelCollate(mean, std)

    def _folder(self) -> Path:
        folder = find_cifar(self.data_dir)
        if folder is None:
            wanted = ", ".join((*TRAIN_FILES, TEST_FILE))
            raise MissingDataError(
                f"CIFAR-10 not found: looked for {wanted} in {self.data_dir / 'cifar-10-batches-py'} and {self.data_dir}. "
                f"Download cifar-10-python.tar.gz (https://www.cs.toronto.edu/~kriz/cifar.html) and run "
                f"`python -m lra.prepare --source cifar-10-python.tar.gz --dest {self.data_dir.parent}`."
            )
        return folder

    def cache_settings(self) -> dict[str, Any]:
        folder = self._folder()
        stats = [(name, (folder / name).stat().st_size, (folder / name).stat().st_mtime_ns) for name in (*TRAIN_FILES, TEST_FILE)]
        return {"path": str(folder.resolve()), "files": stats, "val_split": self.val_split, "split_seed": self.split_seed, "gray": "itu-r-601-2"}

    def build_splits(self) -> dict[str, Any]:
        import datasets
        import pyarrow as pa

        folder = self._folder()
        parts = [read_batch(folder / name) for name in tqdm(TRAIN_FILES, desc="reading CIFAR-10", unit="file", leave=False)]
        train_x, train_y = luma(np.concatenate([p[0] for p in parts])), np.concatenate([p[1] for p in parts])
        test_rgb, test_y = read_batch(folder / TEST_FILE)
        test_x = luma(test_rgb)
        keep, held = seeded_split(len(train_x), [1 - self.val_split, self.val_split], self.split_seed)
        features = datasets.Features(
            {"x": datasets.Sequence(datasets.Value("uint8"), length=1024), "y": datasets.Value("int64"), "length": datasets.Value("int32")}
        )

        def make(x: np.ndarray, y: np.ndarray):
            pixels = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), x.shape[1])  # one buffer, no per-row conversion
            return datasets.Dataset.from_dict({"x": pixels, "y": y, "length": np.full(len(x), x.shape[1], dtype=np.int32)}, features=features)

        return {"train": make(train_x[keep], train_y[keep]), "val": make(train_x[held], train_y[held]), "test": make(test_x, test_y)}
