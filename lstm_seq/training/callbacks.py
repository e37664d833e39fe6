"""The fault-tolerance callbacks of a training run, and what they report."""

from __future__ import annotations

import os
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint

from lstm_seq.training.audit import TrainingAudit
from lstm_seq.training.nonfinite import NonFiniteGuard
from lstm_seq.training.resume import ResumeCallback


class RunCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that keeps its best-model bookkeeping when a run is resumed into a new directory.

    Each pipeline run (a resumed one too) writes into its own run directory. Lightning's ModelCheckpoint
    then restores only ``best_model_path`` from the checkpoint, not the best score: the first validation
    after a resume would count as a new best, so "best" would depend on whether the run was interrupted.
    This subclass restores the whole state; the earlier run's files are never deleted (Lightning only
    removes files inside its own ``dirpath``). Use ``enable_version_counter=False`` so that it shares
    ``last.ckpt`` with the mid-epoch checkpoints instead of writing ``last-v1.ckpt``.
    """

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict({**state_dict, "dirpath": self.dirpath})


def fault_tolerance_callbacks(
    checkpoint_dir: str | os.PathLike[str],
    checkpoint_every_n_steps: int | None = None,
    max_consecutive_bad_batches: int | None = 10,
) -> list[pl.Callback]:
    """Callbacks for resumable, NaN-tolerant training.

    Args:
        checkpoint_dir: where ``last.ckpt`` goes (the run's ``checkpoints/``).
        checkpoint_every_n_steps: also write ``last.ckpt`` every this many optimizer steps (mid-epoch);
            None or 0 = only at the end of each epoch (by the pipeline's own ModelCheckpoint).
        max_consecutive_bad_batches: see :class:`NonFiniteGuard`.
    """
    callbacks: list[pl.Callback] = [
        ResumeCallback(),
        NonFiniteGuard(max_consecutive_bad_batches),
        TrainingAudit(),
    ]
    if checkpoint_every_n_steps:
        callbacks.append(
            ModelCheckpoint(
                dirpath=checkpoint_dir,
                every_n_train_steps=int(checkpoint_every_n_steps),
                save_top_k=0,
                save_last=True,
                enable_version_counter=False,  # the same last.ckpt as the pipeline's own ModelCheckpoint
            )
        )
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
