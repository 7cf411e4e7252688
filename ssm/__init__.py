"""Sequence-model blocks: each maps (batch, length, d_model) to the same shape and runs
token by token with ``initial_state`` / ``step``.

* ``S4D``, ``S4PTD``: diagonal SISO state-space layers (``ssm.s4d``);
* ``S5``, ``S5PTD``: MIMO diagonal state-space layers (``ssm.s5``);
* ``DeltaProduct``: DeltaNet / DeltaProduct token mixer (``ssm.deltaproduct``);
* ``SequenceModel``: the residual backbone that stacks any of them (``ssm.backbone``).

>>> from ssm import S4D
>>> import torch
>>> S4D(d_model=8, d_state=16)(torch.randn(2, 32, 8)).shape
torch.Size([2, 32, 8])
"""

from ssm.backbone import SequenceModel
from ssm.deltaproduct import DeltaProduct
from ssm.s4d import S4D, S4PTD
from ssm.s5 import S5, S5PTD

__all__ = ["S4D", "S4PTD", "S5", "S5PTD", "DeltaProduct", "SequenceModel"]
