"""Optimiser hints carried by parameters, the one function that turns them into groups, and the LR schedule.

SSM parameters (Λ, Δ, B) are usually trained with their own, smaller learning rate and
no weight decay.  Layers mark them with ``mark_param``; ``param_groups`` reads the marks.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR


def mark_param(param: nn.Parameter, lr: float | None = None, weight_decay: float = 0.0) -> nn.Parameter:
    """Attach optimiser hints to ``param``: its own learning rate (None: the optimiser's) and weight decay."""
    param._optim = {"weight_decay": float(weight_decay)}
    if lr is not None:
        param._optim["lr"] = float(lr)
    return param


def param_groups(model: nn.Module, decay_1d: bool = False) -> list[dict]:
    """Parameter groups for a torch optimiser.

    * parameters marked with ``mark_param`` go to one group per distinct hint;
    * other parameters with fewer than two dimensions (biases, norm scales) get no
      weight decay unless ``decay_1d``;
    * everything else uses the optimiser's defaults.

    Groups are returned in a deterministic order and empty groups are dropped.
    """
    default, no_decay, hinted = [], [], {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        hint = getattr(p, "_optim", None)
        if hint is not None:
            hinted.setdefault(tuple(sorted(hint.items())), []).append(p)
        elif p.dim() < 2 and not decay_1d:
            no_decay.append(p)
        else:
            default.append(p)
    groups = [{"params": default}, {"params": no_decay, "weight_decay": 0.0}]
    groups += [{"params": ps, **dict(key)} for key, ps in hinted.items()]
    return [g for g in groups if g["params"]]


def cosine_warmup(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int | None = None, warmup_ratio: float = 0.0, min_lr_ratio: float = 0.0) -> LambdaLR:
    """Linear warm-up then cosine decay to ``min_lr_ratio`` times each group's learning rate.

    Args:
        total_steps: optimiser steps of the whole run (Lightning's ``estimated_stepping_batches``).
        warmup_steps: warm-up length in steps; if None, ``warmup_ratio * total_steps``.
        min_lr_ratio: final learning rate as a fraction of the initial one.
    """
    total_steps = max(int(total_steps), 1)
    warm = int(warmup_steps) if warmup_steps is not None else int(warmup_ratio * total_steps)
    if not 0.0 <= min_lr_ratio <= 1.0:
        raise ValueError(f"min_lr_ratio must be in [0, 1], got {min_lr_ratio}")

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = min((step - warm) / max(total_steps - warm, 1), 1.0)
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)
