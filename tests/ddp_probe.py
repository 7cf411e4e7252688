"""A callback for the DDP test: records what each rank trained on and its final weights."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch


class RecordRankData(L.Callback):
    def __init__(self, out: str):
        self.out = Path(out)
        self.batches: list[list[int]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        # one fingerprint per sequence: its real tokens
        for x, m in zip(batch["x"], batch["mask"]):
            self.batches.append(x[m].tolist())

    def on_train_end(self, trainer, pl_module):
        self.out.mkdir(parents=True, exist_ok=True)
        torch.save(
            {"rank": trainer.global_rank, "world": trainer.world_size, "sequences": self.batches, "state_dict": pl_module.state_dict()},
            self.out / f"rank{trainer.global_rank}.pt",
        )
