"""The LightningModule: loss, metrics and optimisation around an injected sequence model.

Metrics, logged per split as ``{train,val,test}/{loss,acc}``:

* ``acc``: accuracy per sequence (output="pool") or per real position (output="token");
* ``seq_acc`` (output="token" only): fraction of sequences with every position right.
"""

from __future__ import annotations

from typing import Any, Callable

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric

from lra.base import IGNORE_INDEX
from ssm.optim import param_groups


def token_metrics(logits: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """Accuracies of per-position predictions.  logits (B, L, C), y (B, L) with IGNORE_INDEX on unscored positions.

    Returns the number of correct and scored positions, the number of sequences with
    all scored positions right, and the number of sequences with at least one scored position.
    """
    valid = y != IGNORE_INDEX  # (B L)
    right = (logits.argmax(-1) == y) & valid  # (B L)
    has_target = valid.any(1)  # (B)
    seq_right = (right == valid).all(1) & has_target  # (B)
    return {
        "correct": right.sum(),
        "scored": valid.sum(),
        "seq_correct": seq_right.sum(),
        "seqs": has_target.sum(),
    }


class SequenceModule(L.LightningModule):
    """Trains a ``SequenceModel`` (or any module mapping (x, mask) to logits) with cross-entropy.

    Args:
        model: the network; ``model(x, mask)`` returns (B, C) or (B, L, C) logits.
        optimizer: factory ``optimizer(param_groups) -> torch.optim.Optimizer`` (a Hydra
            ``_partial_`` config such as AdamW with lr and weight_decay).  Groups come
            from ``ssm.optim.param_groups``, so parameters marked as SSM parameters keep
            their own learning rate and no weight decay.
        scheduler: optional factory ``scheduler(optimizer, total_steps=...)``; stepped every
            optimiser step.
        label_smoothing: cross-entropy label smoothing.
        decay_1d: apply weight decay to biases and norm scales too.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        label_smoothing: float = 0.0,
        decay_1d: bool = False,
    ):
        super().__init__()
        self.model = model
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.label_smoothing = float(label_smoothing)
        self.decay_1d = bool(decay_1d)
        # The resolved run configuration, stored in checkpoints so eval.py can rebuild the model.
        self.run_config: dict | None = None
        self.metrics = nn.ModuleDict(
            {f"{stage}_{name}": MeanMetric() for stage in ("train", "val", "test") for name in ("acc", "seq_acc")}
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(x, mask)

    def _step(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        logits = self(batch["x"], batch["mask"])
        y = batch["y"]
        loss = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1), ignore_index=IGNORE_INDEX, label_smoothing=self.label_smoothing
        )
        batch_size = y.shape[0]
        self.log(f"{stage}/loss", loss, on_step=stage == "train", on_epoch=True, prog_bar=True, batch_size=batch_size, sync_dist=stage != "train")
        acc, seq_acc = self.metrics[f"{stage}_acc"], self.metrics[f"{stage}_seq_acc"]
        if logits.dim() == 2:
            acc.update((logits.argmax(-1) == y).float().mean(), weight=batch_size)
        else:
            m = token_metrics(logits, y)
            acc.update(m["correct"] / m["scored"].clamp_min(1), weight=m["scored"])
            seq_acc.update(m["seq_correct"] / m["seqs"].clamp_min(1), weight=m["seqs"])
            self.log(f"{stage}/seq_acc", seq_acc, on_step=False, on_epoch=True, prog_bar=stage != "train")
        self.log(f"{stage}/acc", acc, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(param_groups(self.model, decay_1d=self.decay_1d))
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer, total_steps=self.trainer.estimated_stepping_batches)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.run_config is not None:
            checkpoint["run_config"] = self.run_config
