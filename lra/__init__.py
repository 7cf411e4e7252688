"""Long Range Arena data modules (batches follow the contract in ``lra.base``).

| task       | module                          | data config  |
|------------|---------------------------------|--------------|
| ListOps    | ``lra.listops.ListOpsDataModule``       | listops      |
| Text       | ``lra.text.TextDataModule``             | text         |
| Retrieval  | ``lra.retrieval.RetrievalDataModule``   | retrieval    |
| Image      | ``lra.image.ImageDataModule``           | image        |
| Pathfinder | ``lra.pathfinder.PathfinderDataModule`` | pathfinder   |
| Path-X     | ``lra.pathfinder.PathXDataModule``      | pathx        |

``python -m lra.prepare`` arranges the official files; ``python -m lra.pathfinder_gen``
generates Pathfinder data in the release's format.
"""

from lra.base import IGNORE_INDEX, PAD_ID, MissingDataError, SequenceDataModule
from lra.image import ImageDataModule
from lra.listops import ListOpsDataModule
from lra.pathfinder import PathfinderDataModule, PathXDataModule
from lra.retrieval import RetrievalDataModule
from lra.text import TextDataModule

__all__ = [
    "IGNORE_INDEX",
    "PAD_ID",
    "MissingDataError",
    "SequenceDataModule",
    "ListOpsDataModule",
    "TextDataModule",
    "RetrievalDataModule",
    "ImageDataModule",
    "PathfinderDataModule",
    "PathXDataModule",
]
