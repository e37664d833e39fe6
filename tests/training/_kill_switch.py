"""Fault injection for the kill-and-resume tests: a training process SIGKILLs itself at a chosen moment.

This lives with the tests; the library has no hook for it. ``EVENT:N`` (or ``LSTM_SEQ_KILL_AT=EVENT:N`` in the
environment) makes the process die with ``SIGKILL`` (no clean-up, no checkpoint on the way out, like
``kill -9`` or the OOM killer) right after the ``N``-th ``EVENT`` of that trainer. Events, counted during
``trainer.fit`` only (never in the sanity check):

* ``save``: a write of ``last.ckpt`` by :class:`~lstm_seq.training.callbacks.LastCheckpoint` completed;
* ``train_batch``: a training batch finished (its optimizer step done, before any checkpoint of it);
* ``val_batch``: a validation batch finished (so the kill falls in the middle of a validation).

In-process, :func:`arm` takes the callbacks of :func:`lstm_seq.training.fault_tolerance_callbacks` before
they go to the Trainer. A pipeline in a subprocess runs as

    LSTM_SEQ_KILL_AT=save:3 python -m tests.training._kill_switch pipelines.asr OVERRIDES...

which arms the callbacks the pipeline builds (``pipelines._hydra.fault_tolerance_callbacks``) and then runs
the pipeline as ``python -m pipelines.asr OVERRIDES...`` would (:func:`main`). Lightning's DDP launcher starts
the other ranks as ``python -m pipelines.asr``, unarmed: only rank 0 dies (no test kills a DDP run).

When the pipelines stop building their callbacks through that function, or the LastCheckpoint stops writing
through ``_save``, nothing dies: the tests that expect the kill then fail (``_pipeline.run`` requires exit
status -SIGKILL; the in-process tests ``pytest.raises`` the kill).
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.trainer.states import TrainerFn

from lstm_seq.training import LastCheckpoint

KILL_ENV = "LSTM_SEQ_KILL_AT"
EVENTS = ("save", "train_batch", "val_batch")


def kill_point(spec: str | None = None) -> tuple[str, int] | None:
    """The ``(event, n)`` of ``spec`` (default: the :data:`KILL_ENV` variable), or None when it is empty.

    Raises:
        ValueError: it is not ``EVENT:N`` with a known event and ``N >= 1``.
    """
    spec = (os.environ.get(KILL_ENV, "") if spec is None else spec).strip()
    if not spec:
        return None
    event, _, n = spec.partition(":")
    if event not in EVENTS or not n.isdigit() or int(n) < 1:
        raise ValueError(f"{KILL_ENV}={spec!r}: expected EVENT:N with EVENT one of {EVENTS} and N >= 1")
    return event, int(n)


def sigkill() -> None:
    """SIGKILL this process."""
    os.kill(os.getpid(), signal.SIGKILL)


class KillSwitch(pl.Callback):
    """Counts the events and calls ``die`` at the ``n``-th ``event``. Reports ``train_batch`` and
    ``val_batch`` itself; ``save`` comes from :class:`ReportingLastCheckpoint`."""

    def __init__(self, event: str, n: int, die: Callable[[], None] = sigkill) -> None:
        self.point = (event, n)
        self.die = die
        self.counts: Counter[str] = Counter()

    def reached(self, event: str) -> None:
        """Count one ``event``; die if it is the chosen one."""
        self.counts[event] += 1
        if self.point == (event, self.counts[event]):
            print(f"{KILL_ENV}: killed after {event} {self.counts[event]}", flush=True)
            sys.stderr.flush()
            self.die()

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self.reached("train_batch")

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
            self.reached("val_batch")


class ReportingLastCheckpoint(LastCheckpoint):
    """The same :class:`~lstm_seq.training.callbacks.LastCheckpoint` (same settings, same ``state_key``, so
    its checkpoints resume in unarmed runs) that reports each completed write of ``last.ckpt`` to ``switch``
    as the ``save`` event."""

    def __init__(self, last: LastCheckpoint, switch: KillSwitch) -> None:
        super().__init__(last.dirpath, last.every_n_train_steps)
        self.switch = switch

    def _save(self, trainer: pl.Trainer, moment: str, force: bool = False) -> None:
        before = self.writes
        super()._save(trainer, moment, force)
        if self.writes > before:
            self.switch.reached("save")


def arm(
    callbacks: Sequence[pl.Callback], spec: str | None = None, die: Callable[[], None] = sigkill
) -> list[pl.Callback]:
    """``callbacks`` (those of :func:`~lstm_seq.training.fault_tolerance_callbacks`) with the kill at
    ``spec`` (default: :data:`KILL_ENV`): a :class:`KillSwitch` just before the LastCheckpoint, which is
    replaced by a :class:`ReportingLastCheckpoint`. Unchanged when there is no kill point."""
    point = kill_point(spec)
    out = list(callbacks)
    if point is None:
        return out
    (i,) = [i for i, cb in enumerate(out) if isinstance(cb, LastCheckpoint)]
    switch = KillSwitch(*point, die=die)
    last = out[i]
    assert isinstance(last, LastCheckpoint)
    out[i : i + 1] = [switch, ReportingLastCheckpoint(last, switch)]
    return out


def main(argv: Sequence[str]) -> None:
    """``main(["pipelines.asr", *overrides])``: run that pipeline module as ``__main__`` with the
    fault-tolerance callbacks it builds armed (:data:`KILL_ENV`); fails when it built none."""
    pipeline, *overrides = argv
    kill_point()  # a malformed spec fails here, before the run
    import pipelines._hydra as glue

    build = glue.fault_tolerance_callbacks
    armed: list[int] = []

    def armed_callbacks(*args: Any, **kwargs: Any) -> list[pl.Callback]:
        armed.append(1)
        return arm(build(*args, **kwargs))

    glue.fault_tolerance_callbacks = armed_callbacks
    sys.argv = [sys.argv[0], *overrides]
    runpy.run_module(pipeline, run_name="__main__", alter_sys=True)
    if not armed:
        sys.exit(f"{KILL_ENV}: {pipeline} built no fault-tolerance callbacks, so nothing was armed")


if __name__ == "__main__":
    main(sys.argv[1:])
