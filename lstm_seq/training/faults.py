"""Fault injection for the kill-and-resume tests: the process SIGKILLs itself at a chosen moment.

Set ``LSTM_SEQ_KILL_AT=EVENT:N`` in a training process's environment and it dies with ``SIGKILL`` (no
clean-up, no checkpoint on the way out, like ``kill -9`` or the OOM killer) right after the ``N``-th
``EVENT`` of that process. Events, counted during ``trainer.fit`` only (never in the sanity check):

* ``save``: a write of ``last.ckpt`` by :class:`~lstm_seq.training.callbacks.LastCheckpoint` completed;
* ``train_batch``: a training batch finished (its optimizer step done, before any checkpoint of it);
* ``val_batch``: a validation batch finished (so the kill falls in the middle of a validation).

Unset (the normal case) nothing is counted and nothing happens. Under DDP every rank counts and dies.
"""

from __future__ import annotations

import os
import signal
import sys
from collections import Counter
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.trainer.states import TrainerFn

KILL_ENV = "LSTM_SEQ_KILL_AT"
EVENTS = ("save", "train_batch", "val_batch")

_counts: Counter[str] = Counter()


def kill_point() -> tuple[str, int] | None:
    """The ``(event, n)`` of :data:`KILL_ENV`, or None when it is unset.

    Raises:
        ValueError: the variable is set but is not ``EVENT:N`` with a known event and ``N >= 1``.
    """
    spec = os.environ.get(KILL_ENV, "").strip()
    if not spec:
        return None
    event, _, n = spec.partition(":")
    if event not in EVENTS or not n.isdigit() or int(n) < 1:
        raise ValueError(f"{KILL_ENV}={spec!r}: expected EVENT:N with EVENT one of {EVENTS} and N >= 1")
    return event, int(n)


def reached(event: str) -> None:
    """Count one ``event``; SIGKILL this process if it is the one :data:`KILL_ENV` names."""
    point = kill_point()
    if point is None:
        return
    _counts[event] += 1
    if point == (event, _counts[event]):
        print(f"{KILL_ENV}: killed after {event} {_counts[event]}", flush=True)
        sys.stderr.flush()
        _die()


def _die() -> None:
    """SIGKILL this process (in-process tests replace this with an exception)."""
    os.kill(os.getpid(), signal.SIGKILL)


class KillSwitch(pl.Callback):
    """Reports the ``train_batch`` and ``val_batch`` events to :func:`reached` (``save`` is reported by
    :class:`~lstm_seq.training.callbacks.LastCheckpoint` itself). Added by
    :func:`~lstm_seq.training.callbacks.fault_tolerance_callbacks` only when :data:`KILL_ENV` is set."""

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        reached("train_batch")

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not trainer.sanity_checking and trainer.state.fn == TrainerFn.FITTING:
            reached("val_batch")
