"""Training callbacks used by ``configs/callbacks``."""

from __future__ import annotations

import shutil
import signal
import warnings
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.rank_zero import rank_zero_only


class Preempted(SIGTERMException):
    """Training was stopped by a signal after saving a resumable checkpoint (``path``)."""

    def __init__(self, path: str, step: int):
        super().__init__(f"stopped by a signal after step {step}; resume with ckpt_path={path}")
        self.path, self.step = path, step


class PreemptionCheckpoint(L.Callback):
    """Save a resumable checkpoint and stop when the job receives SIGTERM or SIGUSR1.

    Clusters send one of these signals before killing a job (SLURM sends SIGUSR1 with
    ``--signal=USR1@90``, most schedulers SIGTERM).  The handler only sets a flag; the
    checkpoint is written at the end of the current training step, where the state is
    consistent, and training then stops with ``Preempted``.  Resuming from it
    (``ckpt_path=<dirpath>/preempted.ckpt``) continues mid-epoch exactly.

    Args:
        dirpath: folder of the checkpoint.
        filename: its file name.
        signals: names of the signals to catch.
    """

    def __init__(self, dirpath: str, filename: str = "preempted.ckpt", signals: tuple[str, ...] = ("SIGTERM", "SIGUSR1")):
        self.path = str(Path(dirpath) / filename)
        self.signals = [getattr(signal, name) for name in signals]
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handler(self, signum, frame) -> None:
        self.requested = True
        previous = self._previous.get(signum)
        if callable(previous):
            previous(signum, frame)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Installed at train start, after Lightning's own handlers, which are chained.
        self.requested = False
        for sig in self.signals:
            self._previous[sig] = signal.getsignal(sig)
            signal.signal(sig, self._handler)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._restore()

    def _restore(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        self._previous = {}

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx: int) -> None:
        if not trainer.strategy.reduce_boolean_decision(self.requested, all=False):
            return
        trainer.save_checkpoint(self.path)
        raise Preempted(self.path, trainer.global_step)


class LastCheckpoint(ModelCheckpoint):
    """A rolling ``last.ckpt`` (``save_last=True``, every ``every_n_train_steps``) that also holds
    the weights training ended with.

    Lightning writes ``last.ckpt`` at the end of training only when it has not written one
    before, so a run that stops between two periodic saves (early stopping, or ``max_steps``
    not a multiple of the interval) kept a ``last.ckpt`` up to N - 1 steps old: evaluating or
    resuming from it silently used stale weights.  Here the end of training always saves it.
    """

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))


class BestCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that keeps its ranking when a run is resumed in a new run directory.

    Every Hydra run writes to a fresh folder, so a resumed run's checkpoint folder differs
    from the one recorded in the checkpoint.  Lightning then forgets the scores of the
    earlier best checkpoints, and the first validation after resuming becomes "best" even
    when it is worse.  Here the earlier best checkpoints are copied into the new folder and
    keep competing with their scores, so the final test uses the truly best epoch.
    """

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        old_dir = state_dict.get("dirpath", self.dirpath)
        if self.dirpath is None or old_dir == self.dirpath:
            return super().load_state_dict(state_dict)
        moved: dict[str, Any] = {}
        for path, score in state_dict.get("best_k_models", {}).items():
            if not Path(path).exists():
                warnings.warn(f"checkpoint {path} of the resumed run is gone; its score is forgotten")
                continue
            moved[path] = str(Path(self.dirpath) / Path(path).name)
            self._copy(path, moved[path])
        state = dict(state_dict)
        state.update(
            dirpath=self.dirpath,
            best_k_models={moved[p]: score for p, score in state_dict.get("best_k_models", {}).items() if p in moved},
            best_model_path=moved.get(state_dict.get("best_model_path", ""), ""),
            kth_best_model_path=moved.get(state_dict.get("kth_best_model_path", ""), ""),
            last_model_path="",
        )
        if not state["best_model_path"]:
            state["best_model_score"] = None
        super().load_state_dict(state)

    @staticmethod
    @rank_zero_only
    def _copy(src: str, dst: str) -> None:
        Path(dst).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
