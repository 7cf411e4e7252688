"""The LightningModule: loss, metrics and optimisation around an injected sequence model.

Metrics, logged per split as ``{train,val,test}/{loss,acc}``:

* ``acc``: accuracy per sequence (output="pool") or per real position (output="token");
* ``seq_acc`` (output="token" only): fraction of sequences with every position right.
"""

from __future__ import annotations

import random
from typing import Any, Callable

import lightning as L
import numpy as np
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


def _numpy_state_to_plain(state: tuple) -> tuple:
    name, keys, pos, has_gauss, gauss = state
    return (str(name), [int(k) for k in keys], int(pos), int(has_gauss), float(gauss))


class NonFiniteError(FloatingPointError):
    """Training produced a NaN or infinite loss or gradient; the weights of the last finished step are intact."""


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
        check_finite: stop with ``NonFiniteError`` (naming the step and the parameter
            groups and parameters concerned) as soon as the loss or a gradient is not
            finite, before the optimiser step, so no checkpoint ever holds broken weights.
            Skipped under fp16 mixed precision, whose loss scaler expects and handles
            infinite gradients.

    Checkpoints also carry the Python, NumPy and torch random states, so a resumed run
    draws the same dropout masks as an uninterrupted one.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        label_smoothing: float = 0.0,
        decay_1d: bool = False,
        check_finite: bool = True,
    ):
        super().__init__()
        self.model = model
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.label_smoothing = float(label_smoothing)
        self.decay_1d = bool(decay_1d)
        self.check_finite = bool(check_finite)
        self._last_loss: torch.Tensor | None = None
        self._loader_states: list[dict] = []
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
        loss = self._step(batch, "train")
        self._last_loss = loss.detach()
        return loss

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        if not self.check_finite or str(self.trainer.precision).startswith("16"):
            return
        grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        checks = torch._foreach_norm(grads) if grads else []
        if self._last_loss is not None:
            checks = [*checks, self._last_loss.float()]
        if checks and not torch.isfinite(torch.stack([c.float() for c in checks])).all():
            raise NonFiniteError(self._describe_nonfinite(optimizer))

    def _describe_nonfinite(self, optimizer: torch.optim.Optimizer) -> str:
        names = {p: n for n, p in self.named_parameters()}
        parts = []
        if self._last_loss is not None and not torch.isfinite(self._last_loss):
            parts.append(f"the loss is {self._last_loss.item()}")
        for i, group in enumerate(optimizer.param_groups):
            bad = [names.get(p, "?") for p in group["params"] if p.grad is not None and not torch.isfinite(p.grad).all()]
            if bad:
                hints = {k: v for k, v in group.items() if k in ("lr", "weight_decay")}
                shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
                parts.append(f"non-finite gradients in parameter group {i} {hints}: {shown}")
        return (
            f"training stopped at step {self.global_step} (epoch {self.current_epoch}): " + "; ".join(parts)
            + ". No optimiser step was taken; the last checkpoint holds the weights before it."
        )

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
        checkpoint["rng_states"] = {
            "python": random.getstate(),
            # plain types, so the checkpoint stays loadable with torch.load(weights_only=True)
            "numpy": _numpy_state_to_plain(np.random.get_state()),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def on_train_start(self) -> None:
        # Lightning builds the training loader early when configure_optimizers asks for
        # estimated_stepping_batches, before it restores the loader's position from the
        # checkpoint, and then never applies it.  Apply it here, before the first batch.
        loaders = self.trainer.train_dataloader
        loaders = loaders if isinstance(loaders, (list, tuple)) else [loaders]
        stateful = [dl for dl in loaders if hasattr(dl, "load_state_dict")]
        if self._loader_states and len(stateful) == len(self._loader_states):
            for loader, state in zip(stateful, self._loader_states):
                loader.load_state_dict(state)
        self._loader_states = []

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._loader_states = checkpoint.get("loops", {}).get("fit_loop", {}).get("state_dict", {}).get("combined_loader", [])
        states = checkpoint.get("rng_states")
        if not states:
            return
        random.setstate(states["python"])
        name, keys, pos, has_gauss, gauss = states["numpy"]
        np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
        torch.set_rng_state(states["torch"])
        if states["cuda"] and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states["cuda"])
