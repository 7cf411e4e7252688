"""Train and test a sequence model: ``python train.py experiment=lra_listops``.

Hydra composes ``configs/train.yaml``; ``train(cfg)`` does the work and can be called
from Python (the tests do).  Useful overrides::

    python train.py experiment=lra_listops model=s4d debug=smoke     # a quick end-to-end check
    python train.py experiment=lra_listops trainer=cpu logger=wandb  # CPU, log to W&B
    python train.py experiment=lra_listops ckpt_path=outputs/.../checkpoints/last.ckpt  # resume
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from lra.base import MissingDataError
from ssm.callbacks import Preempted
from ssm.module import NonFiniteError

# Errors whose message says everything a user needs: printed as one line, no traceback
# (set HYDRA_FULL_ERROR=1 to see it anyway).
USER_ERRORS = (MissingDataError, NonFiniteError, InstantiationException, ValueError, FileNotFoundError)


def instantiate_group(group: DictConfig | None) -> list[Any]:
    """Instantiate every entry of a config group that maps names to ``_target_`` configs (callbacks, loggers)."""
    if not group:
        return []
    return [instantiate(entry) for entry in group.values() if entry is not None and "_target_" in entry]


def build(cfg: DictConfig) -> tuple[L.LightningDataModule, L.LightningModule]:
    """The data module and the LightningModule of a run configuration (model sized by the data)."""
    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.model, **datamodule.dims)
    module = instantiate(cfg.module, model=model)
    module.run_config = OmegaConf.to_container(cfg, resolve=True)
    return datamodule, module


def _as_float(value: Any) -> float:
    return float(value.item() if isinstance(value, torch.Tensor) else value)


def train(cfg: DictConfig, callbacks: list[L.Callback] | None = None) -> dict[str, float]:
    """Fit, then test on the best checkpoint; returns the final metrics (``val/*`` and ``test/*``).

    ``callbacks`` are added to those of ``cfg.callbacks``.  A signal caught by
    ``PreemptionCheckpoint`` ends training with ``ssm.callbacks.Preempted``.
    """
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    Path(cfg.paths.output_dir).mkdir(parents=True, exist_ok=True)

    datamodule, module = build(cfg)
    callbacks = instantiate_group(cfg.get("callbacks")) + list(callbacks or [])
    loggers = instantiate_group(cfg.get("logger"))
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)

    metrics: dict[str, float] = {}
    if cfg.get("train", True):
        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
        metrics.update({k: _as_float(v) for k, v in trainer.callback_metrics.items() if not k.startswith("train/")})
    if cfg.get("test", True):
        ckpt = None
        best = [c for c in trainer.checkpoint_callbacks if getattr(c, "monitor", None) and c.best_model_path]
        if best:
            ckpt = best[0].best_model_path
        elif not cfg.get("train", True) and cfg.get("ckpt_path"):
            ckpt = cfg.ckpt_path
        if ckpt is None:
            print("no checkpoint was saved (e.g. fast_dev_run): testing the current weights")
        results = trainer.test(module, datamodule=datamodule, ckpt_path=ckpt)
        metrics.update({k: _as_float(v) for k, v in (results[0] if results else {}).items()})
        if ckpt:
            metrics["best_checkpoint"] = ckpt  # type: ignore[assignment]

    if trainer.is_global_zero:
        print(f"\nfinal metrics ({cfg.get('task_name', 'run')}, outputs in {cfg.paths.output_dir}):")
        for key in sorted(metrics):
            value = metrics[key]
            print(f"  {key:<20} {value:.4f}" if isinstance(value, float) and math.isfinite(value) else f"  {key:<20} {value}")
    return metrics


def report_errors(fn, cfg: DictConfig):
    """Run ``fn(cfg)``; a preemption or a user error ends the program with a one-line message."""
    try:
        return fn(cfg)
    except Preempted as err:
        print(f"\n{err}", file=sys.stderr)
        sys.exit(124)
    except USER_ERRORS as err:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        message = " ".join(str(err).split())
        print(f"\nerror: {type(err).__name__}: {message}\n(set HYDRA_FULL_ERROR=1 for the traceback)", file=sys.stderr)
        sys.exit(1)


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> float | None:
    metrics = report_errors(train, cfg)
    # Returned for Hydra sweepers that optimise a metric.
    value = metrics.get(cfg.get("optimized_metric") or "")
    return value if isinstance(value, float) else None


if __name__ == "__main__":
    main()
