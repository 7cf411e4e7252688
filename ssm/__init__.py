"""Sequence-model blocks: each maps (batch, length, d_model) to the same shape.

>>> from ssm import S4D
>>> import torch
>>> S4D(d_model=8, d_state=16)(torch.randn(2, 32, 8)).shape
torch.Size([2, 32, 8])
"""

from ssm.backbone import SequenceModel
from ssm.s4d import S4D

__all__ = ["S4D", "SequenceModel"]
