"""Exact mid-epoch resume: the loader position and the random states travel in the checkpoint.

How the pieces fit (Lightning 2.6):

* Lightning stores ``state_dict()`` of every training DataLoader that has ``state_dict``/``load_state_dict``
  in the checkpoint (``loops.fit_loop.state_dict.combined_loader``) and, on resume, calls
  ``load_state_dict`` *before* it creates the epoch's iterator (except when the loader was built before the
  restore; :class:`ResumeCallback` then has it rebuilt). A :class:`ResumableDataLoader` forwards
  this to its :class:`~lstm_seq.training.sampler.ResumableBatchSampler` (epoch + batches done) and adds
  the random states (python, numpy, torch, CUDA) captured at save time.
* Lightning itself restores its batch counter (``batch_idx`` continues at the number of batches done), the
  optimizer, the schedulers and ``global_step``; it does not restore random states.
* :class:`ResumeCallback` keeps ``batches_done`` up to date (``on_train_batch_end``: the batch went through
  ``training_step`` and the optimizer step; prefetching makes the sampler's own position run ahead) and puts
  the random states back at the point where they were captured: right before the first resumed batch
  (mid-epoch), or right before the epoch's iterator is created (checkpoint at an epoch boundary: the
  DataLoader draws its base seed from the torch generator when an iterator is created).

Limits: with ``num_workers > 0`` worker processes are seeded from that base seed, so per-sample randomness
should come from :class:`~lstm_seq.training.sampler.SeededIndex` rather than from the worker's global RNG.
Under DDP the checkpoint holds rank 0's random states, so a resumed multi-process run continues correctly
but not bit-identically.
"""

from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Iterable, Mapping
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader

from lstm_seq.training.sampler import ResumableBatchSampler

# Fault injection for the kill-and-resume tests: with this variable set to N, training stops still (prints
# a line and sleeps) before the first batch that comes after N optimizer steps, so that a test can SIGKILL
# the process at a known point in the middle of an epoch.
HALT_ENV = "LSTM_SEQ_HALT_AFTER_STEP"


def capture_rng_state() -> dict[str, Any]:
    """The python, numpy, torch (and CUDA) random states as tensors and plain containers
    (loadable with ``torch.load(weights_only=True)``)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()  # noqa: NPY002 (the legacy global state is what code may use)
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    legacy = (kind, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), float(cached))
    np.random.set_state(legacy)  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class ResumableDataLoader(DataLoader):
    """A DataLoader over a :class:`ResumableBatchSampler` whose ``state_dict`` Lightning saves in checkpoints.

    Takes the DataLoader's arguments; ``batch_sampler`` must be a :class:`ResumableBatchSampler`.
    """

    def __init__(self, dataset: Any, batch_sampler: ResumableBatchSampler, **kwargs: Any) -> None:
        if not isinstance(batch_sampler, ResumableBatchSampler):
            raise TypeError(
                f"batch_sampler must be a ResumableBatchSampler, got {type(batch_sampler).__name__}"
            )
        super().__init__(dataset, batch_sampler=batch_sampler, **kwargs)
        self.pending_rng: dict[str, Any] | None = None
        self.state_loaded = False

    @property
    def resumable_sampler(self) -> ResumableBatchSampler:
        assert isinstance(self.batch_sampler, ResumableBatchSampler)
        return self.batch_sampler

    def state_dict(self) -> dict[str, Any]:
        return {**self.resumable_sampler.state_dict(), "rng": capture_rng_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        sampler = self.resumable_sampler
        sampler.load_state_dict(state)
        self.state_loaded = True
        rng = state.get("rng")
        if rng is None:
            return
        if sampler.at_epoch_start:
            restore_rng_state(rng)  # before this epoch's iterator draws its base seed
        else:
            self.pending_rng = rng  # restored by ResumeCallback before the first resumed batch


def train_loaders(trainer: pl.Trainer) -> list[Any]:
    """The training DataLoader(s) of ``trainer``, flattened."""
    loaders = trainer.train_dataloader
    if loaders is None:
        return []
    if isinstance(loaders, Mapping):
        return list(loaders.values())
    if isinstance(loaders, Iterable) and not isinstance(loaders, DataLoader):
        return list(loaders)
    return [loaders]


class ResumeCallback(pl.Callback):
    """Counts consumed training batches for :class:`ResumableDataLoader` and restores random states on
    resume (see the module docstring). Stateless itself: everything is in the loader's state.

    One Lightning ordering problem is handled here: a module whose ``configure_optimizers`` reads
    ``trainer.estimated_stepping_batches`` (both pipelines do, for their schedules) makes Lightning build
    the training loader and its iterator *before* the checkpoint's loop state is restored, so the
    loader's state is never loaded. ``on_train_start`` (after the restore) then drops that loader so that
    Lightning builds it again at the start of the epoch, this time loading the saved position.
    """

    def __init__(self) -> None:
        self._resuming = False

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        fit = checkpoint.get("loops", {}).get("fit_loop", {}).get("state_dict", {})
        self._resuming = bool(fit.get("combined_loader"))

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._resuming:
            return
        self._resuming = False
        stale = [
            x for x in train_loaders(trainer) if isinstance(x, ResumableDataLoader) and not x.state_loaded
        ]
        if stale and trainer.fit_loop.restarting:
            trainer.fit_loop._combined_loader = None  # rebuilt (with the saved state) by the next setup_data

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        for loader in train_loaders(trainer):
            if isinstance(loader, ResumableDataLoader) and loader.pending_rng is not None:
                restore_rng_state(loader.pending_rng)
                loader.pending_rng = None
        halt = os.environ.get(HALT_ENV)
        if halt and trainer.global_step == int(halt) and trainer.is_global_zero:
            print(f"{HALT_ENV}: halted after step {trainer.global_step}", flush=True)
            sys.stdout.flush()
            time.sleep(3600)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        for loader in train_loaders(trainer):
            if isinstance(loader, ResumableDataLoader):
                loader.resumable_sampler.batches_done = batch_idx + 1
