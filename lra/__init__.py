"""Long Range Arena data modules (batches follow the contract in ``lra.base``)."""

from lra.base import IGNORE_INDEX, PAD_ID, MissingDataError, SequenceDataModule
from lra.listops import ListOpsDataModule

__all__ = ["IGNORE_INDEX", "PAD_ID", "MissingDataError", "SequenceDataModule", "ListOpsDataModule"]
