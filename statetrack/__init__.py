"""State tracking: group word problems (parity, Z_n, S_n, A_n, products), modular arithmetic, and their metrics.

>>> from statetrack import GroupWordDataModule
>>> dm = GroupWordDataModule(group="S3", train_length=8, num_train=4, num_val=2, num_test=2)
>>> dm.setup(); dm.dims["num_classes"], dm.dims["output"]
(6, 'token')
"""

from statetrack.data import GroupWordDataModule, ModArithDataModule, StateTrackingDataModule
from statetrack.groups import Group, make_group
from statetrack.metrics import PrefixAccuracy, prefix_sequence_accuracy

__all__ = ["Group", "GroupWordDataModule", "ModArithDataModule", "PrefixAccuracy", "StateTrackingDataModule", "make_group", "prefix_sequence_accuracy"]
