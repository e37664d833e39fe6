"""The fault-tolerance callbacks of a training run, and what they report."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Checkpoint, ModelCheckpoint

from lstm_seq.training.audit import TrainingAudit
from lstm_seq.training.nonfinite import NonFiniteGuard
from lstm_seq.training.resume import ResumeCallback

log = logging.getLogger(__name__)


class RunCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` of the best model that keeps its bookkeeping when a run is resumed into a new
    directory.

    Each pipeline run (a resumed one too) writes into its own run directory. Lightning's ModelCheckpoint
    then restores only ``best_model_path`` from the checkpoint, not the best score: the first validation
    after a resume would count as a new best, so "best" would depend on whether the run was interrupted.
    This subclass restores the whole state (monitor score, best path, top-k); the earlier run's files are
    never deleted (Lightning only removes files inside its own ``dirpath``). Use it for the best model only
    (``save_last=False``): ``last.ckpt`` belongs to :class:`LastCheckpoint`, which must come after it in the
    callback list so that each end-of-epoch ``last.ckpt`` holds that epoch's best-model bookkeeping.
    """

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict({**state_dict, "dirpath": self.dirpath})


class LastCheckpoint(Checkpoint):
    """Writes ``<dirpath>/last.ckpt`` at the end of every epoch and every ``every_n_train_steps`` optimizer
    steps, only at the moments from which Lightning 2.6 resumes a run exactly.

    Lightning resumes differently depending on where in its loop a checkpoint was taken:

    * ``on_train_batch_end`` of a batch after which the epoch trains on: it continues with the next batch.
      A batch followed by a validation or by the end of the epoch is different: from there Lightning
      fast-forwards over that validation and the epoch-end hooks, so the resumed run would never validate
      that epoch (its best model, early stopping and random stream would differ). No step checkpoint is
      written after such a batch; the epoch-end checkpoint follows.
    * ``on_validation_end``: Lightning replays the epoch-end hooks without the validation metrics
      (``EarlyStopping`` fails on them). Never used here.
    * after a SIGTERM (Lightning then stops the run at the end of that batch): at that batch's end when it
      is such a moment; otherwise the epoch-end checkpoint Lightning still reaches, or the previous one.
    * ``on_train_epoch_end``, after every other callback's epoch-end hook (the best-model checkpoint,
      early stopping; Lightning runs checkpoint callbacks last, and this one after :class:`RunCheckpoint`):
      Lightning starts the next epoch afresh. Written at every epoch end, whether or not the monitored
      metric improved.

    ``trainer.should_stop`` (set by early stopping at this epoch end) is kept in the checkpoint and set
    again on resume, so a resumed run stops where the uninterrupted one did (a stop by
    :class:`NonFiniteGuard` is not: resuming such a run is a retry). A run resumed from a checkpoint with
    nothing left to train writes that state to its own ``last.ckpt`` at ``on_fit_end``.
    Writes go through the trainer's CheckpointIO (atomic with :class:`~lstm_seq.training.AtomicCheckpointIO`).

    Args:
        dirpath: the folder of ``last.ckpt`` (the run's ``checkpoints/``).
        every_n_train_steps: also write every this many optimizer steps; 0 or None = at epoch ends only.
    """

    FILENAME = "last.ckpt"

    def __init__(self, dirpath: str | os.PathLike[str], every_n_train_steps: int | None = 0) -> None:
        self.dirpath = Path(dirpath)
        self.every_n_train_steps = int(every_n_train_steps or 0)
        self.writes = 0  # files written by this process
        self._saved_step: int | None = None  # global step of the state last written (or resumed from)
        self._should_stop = False  # trainer.should_stop of the state being written

    @property
    def path(self) -> Path:
        """``<dirpath>/last.ckpt``."""
        return self.dirpath / self.FILENAME

    @property
    def state_key(self) -> str:
        return "LastCheckpoint"

    def state_dict(self) -> dict[str, Any]:
        return {"should_stop": self._should_stop}

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        later = trainer.callbacks[trainer.callbacks.index(self) + 1 :]
        if any(isinstance(cb, Checkpoint) for cb in later):
            raise ValueError(
                "LastCheckpoint must be the last checkpoint callback: each last.ckpt must hold the state "
                "the other checkpoint callbacks reached at that moment (best model, top-k)"
            )

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        self._saved_step = int(checkpoint.get("global_step", 0))  # that state is on disk already
        if checkpoint.get("callbacks", {}).get(self.state_key, {}).get("should_stop"):
            trainer.should_stop = True  # the run had decided to stop at that epoch end

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        n = self.every_n_train_steps
        due = bool(n) and trainer.global_step % n == 0
        if (due or trainer.received_sigterm) and not _epoch_end_or_validation_follows(trainer):
            self._save(trainer, "SIGTERM" if trainer.received_sigterm else "mid-epoch")

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._save(trainer, "end of epoch")

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.writes == 0 and trainer.global_step > 0:  # resumed with nothing left to train
            # Lightning stopped (should_stop) before counting the checkpoint's epoch as completed: count it,
            # as Lightning itself does when it stops at max_epochs, so current_epoch is the uninterrupted one
            progress = trainer.fit_loop.epoch_progress.current
            progress.completed = progress.processed
            self._save(trainer, "nothing left to train", force=True)

    def _save(self, trainer: pl.Trainer, moment: str, force: bool = False) -> None:
        if not force and (self._saved_step == trainer.global_step or trainer.global_step == 0):
            return  # one file per state (a step checkpoint and the epoch end can share a global step)
        # a stop by NonFiniteGuard is not carried over: resuming that run is a retry (e.g. with a lower lr)
        halted = any(isinstance(cb, NonFiniteGuard) and cb.stop_message for cb in trainer.callbacks)
        self._should_stop = bool(trainer.should_stop) and not halted
        trainer.save_checkpoint(self.path, weights_only=False)  # the full state a resume needs
        self._saved_step = trainer.global_step
        self.writes += 1
        if trainer.is_global_zero:
            epoch, step = trainer.current_epoch, trainer.global_step
            log.info("wrote %s (epoch %d, step %d, %s)", self.path, epoch, step, moment)


def _epoch_end_or_validation_follows(trainer: pl.Trainer) -> bool:
    """Whether the training batch that just ended is followed by the end of the epoch (or of the run) or
    by a validation (Lightning's own decision, ``_should_check_val_fx``, a private API of the 2.6 series)."""
    loop = trainer.fit_loop.epoch_loop
    progress = loop.batch_progress
    if progress.is_last_batch or progress.current.ready >= trainer.num_training_batches:
        return True
    if trainer.should_stop or loop._is_training_done:
        return True
    return bool(loop._should_check_val_fx(trainer.fit_loop._data_fetcher))


def fault_tolerance_callbacks(
    checkpoint_dir: str | os.PathLike[str],
    checkpoint_every_n_steps: int | None = None,
    max_consecutive_bad_batches: int | None = 10,
) -> list[pl.Callback]:
    """Callbacks for resumable, NaN-tolerant training.

    Args:
        checkpoint_dir: where ``last.ckpt`` goes (the run's ``checkpoints/``).
        checkpoint_every_n_steps: write ``last.ckpt`` every this many optimizer steps (mid-epoch) as well as
            at every epoch end; None or 0 = at every epoch end only (see :class:`LastCheckpoint`).
        max_consecutive_bad_batches: see :class:`NonFiniteGuard`.
    """
    callbacks: list[pl.Callback] = [
        ResumeCallback(),
        NonFiniteGuard(max_consecutive_bad_batches),
        TrainingAudit(),
    ]
    callbacks.append(LastCheckpoint(checkpoint_dir, checkpoint_every_n_steps))
    return callbacks


def training_report(trainer: pl.Trainer) -> dict[str, Any]:
    """``train/skipped_batches`` and the :class:`TrainingAudit` keys, for metrics.json."""
    out: dict[str, Any] = {}
    for cb in trainer.callbacks:
        if isinstance(cb, NonFiniteGuard):
            out["train/skipped_batches"] = cb.skipped
        elif isinstance(cb, TrainingAudit):
            out.update(cb.report)
    return out


def stop_message(trainer: pl.Trainer) -> str | None:
    """Why a :class:`NonFiniteGuard` stopped the run, or None."""
    for cb in trainer.callbacks:
        if isinstance(cb, NonFiniteGuard) and cb.stop_message:
            return cb.stop_message
    return None
